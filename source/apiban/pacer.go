package apiban

import (
	"time"
)

// Gate paces and serialises the requests of every client given it:
// APIBAN's rate limit is per key, so the clients of several sets pulled
// with one key must share one Gate (Config.Gate). It is safe for
// concurrent use.
type Gate struct {
	// turn is a lock that a waiting caller can give up on: it serialises
	// the pacer and the requests.
	turn  chan struct{}
	pacer *pacer
}

// NewGate returns a gate letting at most maxRequests requests through in
// any window (0: no pacing; one request at a time still).
func NewGate(maxRequests int, window time.Duration) *Gate {
	return &Gate{turn: make(chan struct{}, 1), pacer: newPacer(maxRequests, window)}
}

// pacer keeps at most max requests in any sliding window. It stamps a
// request when its answer arrived, not when it was sent: the server saw
// it somewhere in between, so counting from the later instant can only
// leave more room than the server needs, never less. The gate's turn
// lock guards it.
type pacer struct {
	max    int
	window time.Duration
	stamps []time.Time // oldest first, only those still in the window
}

func newPacer(maxRequests int, window time.Duration) *pacer {
	return &pacer{max: maxRequests, window: window}
}

// delay is how long to wait at now before one more request may go.
func (p *pacer) delay(now time.Time) time.Duration {
	if p.max <= 0 {
		return 0
	}
	p.forget(now)
	if len(p.stamps) < p.max {
		return 0
	}
	return p.stamps[len(p.stamps)-p.max].Add(p.window).Sub(now)
}

// record notes a request answered (or given up on) at t.
func (p *pacer) record(t time.Time) {
	if p.max > 0 {
		p.stamps = append(p.stamps, t)
	}
}

// forget drops stamps a whole window old.
func (p *pacer) forget(now time.Time) {
	i := 0
	for i < len(p.stamps) && now.Sub(p.stamps[i]) >= p.window {
		i++
	}
	p.stamps = p.stamps[i:]
}
