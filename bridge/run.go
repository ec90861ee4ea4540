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
}

// RunEach syncs the engines of every set until ctx ends: each round syncs
// them one after the other (their feed clients share one pacer, so
// running them at once would gain nothing), then waits s.Interval; a
// round in which any engine failed is retried sooner. done, when set, is
// called after each engine's sync with the engine's index, for logs and
// metrics. Errors are reported through done and retried; a sync cut short
// by ctx leaves the state file as the last completed step wrote it.
func RunEach(ctx context.Context, es []*Engine, s Schedule, done func(int, Report, error)) {
	retry := s.RetryMin
	full := s.FirstFull
	for {
		failed := false
		for i, e := range es {
			rep, err := e.Sync(ctx, full)
			if ctx.Err() != nil {
				return
			}
			if done != nil {
				done(i, rep, err)
			}
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
