package apibansim

import "time"

// limiter is a sliding-window limit per key: a request is refused when
// max requests were accepted in the last window. Refused requests do not
// count, so a client that backs off a whole window always gets through.
// The Sim's mutex guards it.
type limiter struct {
	max    int
	window time.Duration
	seen   map[string][]time.Time
}

func newLimiter(maxRequests int, window time.Duration) *limiter {
	return &limiter{max: maxRequests, window: window, seen: map[string][]time.Time{}}
}

// allow records a request for key at now unless it is over the limit.
func (l *limiter) allow(key string, now time.Time) bool {
	if l.max < 0 {
		return true
	}
	recent := l.seen[key][:0]
	for _, t := range l.seen[key] {
		if now.Sub(t) < l.window {
			recent = append(recent, t)
		}
	}
	if len(recent) >= l.max {
		l.seen[key] = recent
		return false
	}
	l.seen[key] = append(recent, now)
	return true
}
