package apiban

import (
	"context"
	"time"
)

// Clock is time as the client sees it. Tests swap it to observe and skip
// the waits of pacing, backoff and 429 handling.
type Clock interface {
	Now() time.Time
	// Sleep waits d, or less if ctx ends first, in which case it
	// returns ctx.Err().
	Sleep(ctx context.Context, d time.Duration) error
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
