package bridge

import (
	"context"
	"time"
)

// Schedule says when the daemon syncs.
type Schedule struct {
	Interval time.Duration
	// RetryMin is the first wait after a failed sync; it doubles up to
	// Interval, so a LAPI outage is noticed quickly but not hammered.
	RetryMin time.Duration
	// FirstFull makes the first sync a full one.
	FirstFull bool
	// FullNow, when it receives, makes the next sync a full one at once.
	FullNow <-chan struct{}
	// Done is called after every sync, for logs and metrics.
	Done func(Report, error)
}

// Run syncs until ctx ends. Errors are reported through Done and retried;
// a sync cut short by ctx leaves the state file as the last completed
// step wrote it.
func (e *Engine) Run(ctx context.Context, s Schedule) {
	retry := s.RetryMin
	full := s.FirstFull
	for {
		rep, err := e.Sync(ctx, full)
		if ctx.Err() != nil {
			return
		}
		if s.Done != nil {
			s.Done(rep, err)
		}
		wait := s.Interval
		full = false
		if err != nil {
			wait = retry
			retry = min(retry*2, s.Interval)
		} else {
			retry = s.RetryMin
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		case <-s.FullNow:
			timer.Stop()
			full = true
		}
	}
}
