package bridge

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// The loop retries after a failure with the short delay, recovers, and a
// full-resync request starts a full sync at once; it stops when ctx ends.
func TestRunRetriesAndHonoursFullRequests(t *testing.T) {
	r := newRig(t)
	r.opts.Now = time.Now
	r.feed.add(3)
	r.lapi.failPush = errors.New("LAPI down")
	e := r.engine()
	full := make(chan struct{}, 1)
	var mu sync.Mutex
	var reps []Report
	var errs []error
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		RunEach(ctx, []*Engine{e}, Schedule{Interval: time.Hour, RetryMin: 10 * time.Millisecond, FullNow: full}, func(_ int, rep Report, err error) {
			mu.Lock()
			defer mu.Unlock()
			reps, errs = append(reps, rep), append(errs, err)
			switch len(reps) {
			case 1:
				r.lapi.failPush = nil // LAPI is back before the retry
			case 2:
				full <- struct{}{}
			case 3:
				cancel()
			}
		})
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("RunEach did not stop after cancel")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reps) != 3 {
		t.Fatalf("%d syncs, want 3", len(reps))
	}
	if errs[0] == nil || errs[1] != nil || reps[1].Pushed != 3 {
		t.Fatalf("first must fail, second push 3: %v %+v", errs, reps[1])
	}
	if !reps[2].Full || reps[2].Pushed != 0 {
		t.Fatalf("third sync must be a full one that pushes nothing new: %+v", reps[2])
	}
}

// A full sync that fails (here the feed's first page) is not forgotten:
// the retry is a full sync too, although RunEach drops its own flag after
// every sync, because the failed pass saved the cursor it had reached ("",
// the start) and a sync from no cursor is full. A SIGUSR1 or --full during
// an outage must not become an incremental sync from the old cursor.
func TestRunRetriesAFailedFullSyncAsFull(t *testing.T) {
	r := newRig(t)
	r.opts.Now = time.Now
	r.feed.add(3)
	r.sync(t, r.engine(), false) // a cursor exists: the next sync is incremental unless asked
	r.feed.failAt = r.feed.requests + 1
	var reps []Report
	var errs []error
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	RunEach(ctx, []*Engine{r.engine()}, Schedule{Interval: time.Hour, RetryMin: 10 * time.Millisecond, FirstFull: true}, func(_ int, rep Report, err error) {
		reps, errs = append(reps, rep), append(errs, err)
		r.feed.failAt = 0
		if len(reps) == 2 {
			cancel()
		}
	})
	if len(reps) != 2 || errs[0] == nil || errs[1] != nil {
		t.Fatalf("want a failed sync then a good one: %v", errs)
	}
	if !reps[1].Full {
		t.Errorf("the retry of a failed full sync was not full: %+v", reps[1])
	}
}
