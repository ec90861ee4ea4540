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
	RunEach(ctx, []*Engine{e}, s, nil)
}

// RunEach is Run for the engines of several sets: each round syncs them
// one after the other (their feed clients share one pacer, so running
// them at once would gain nothing), then waits as Run does; a round in
// which any engine failed is retried sooner. done, when set, is called
// after each engine's sync in place of s.Done, with the engine's index.
func RunEach(ctx context.Context, es []*Engine, s Schedule, done func(int, Report, error)) {
	if done == nil {
		done = func(_ int, rep Report, err error) {
			if s.Done != nil {
				s.Done(rep, err)
			}
		}
	}
	retry := s.RetryMin
	full := s.FirstFull
	for {
		failed := false
		for i, e := range es {
			rep, err := e.Sync(ctx, full)
			if ctx.Err() != nil {
				return
			}
			done(i, rep, err)
			failed = failed || err != nil
		}
		wait := s.Interval
		full = false
		if failed {
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
