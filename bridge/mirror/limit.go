package mirror

import (
	"sync"
	"time"
)

// limiter is a token bucket per key name: max requests per window, refilled
// evenly, so a client may burst up to max and then runs at the window's
// rate. max 0 turns it off.
type limiter struct {
	max    int
	window time.Duration
	now    func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

func newLimiter(max int, window time.Duration, now func() time.Time) *limiter {
	return &limiter{max: max, window: window, now: now, buckets: map[string]*bucket{}}
}

func (l *limiter) allow(name string) bool {
	if l.max <= 0 || l.window <= 0 {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b := l.buckets[name]
	if b == nil {
		b = &bucket{tokens: float64(l.max), at: now}
		l.buckets[name] = b
	}
	rate := float64(l.max) / l.window.Seconds()
	b.tokens = min(float64(l.max), b.tokens+now.Sub(b.at).Seconds()*rate)
	b.at = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
