package bouncer

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// draws returns a source that gives vs in turn.
func draws(vs ...float64) func() float64 {
	return func() float64 {
		v := vs[0]
		vs = vs[1:]
		return v
	}
}

// Each resync is the interval moved by up to 10% either way, drawn afresh
// each time (the first too), then put halfway between two polls.
func TestResyncSchedule(t *testing.T) {
	const poll = 10 * time.Second
	s := resyncSchedule{interval: time.Hour, poll: poll, draw: draws(0, 0.5, 0.9999999, 0.25)}
	want := []time.Duration{
		54*time.Minute + 5*time.Second,  // 10% early: 3240 s, then half a poll
		time.Hour + 5*time.Second,       // on time: between the 360th and 361st polls
		65*time.Minute + 55*time.Second, // nearly 10% late: 3959.99 s falls back to 3950 s, then half a poll
		57*time.Minute + 5*time.Second,  // 5% early
	}
	for i, w := range want {
		if got := s.next(); got != w {
			t.Errorf("resync %d after %s, want %s", i+1, got, w)
		}
	}
	if got := (resyncSchedule{interval: 0, poll: poll, draw: draws()}).next(); got != 0 {
		t.Errorf("resync_interval 0: a resync after %s, want none", got)
	}
	mirror := resyncSchedule{interval: 15 * time.Minute, poll: poll, draw: draws(0)}
	if got, want := mirror.next(), 13*time.Minute+35*time.Second; got != want {
		t.Errorf("15m, drawn earliest: %s, want %s", got, want)
	}
	// A poll as long as the spread or longer: the spread holds, on a
	// moment between polls when one fits, else where it was drawn.
	for _, tc := range []struct {
		poll time.Duration
		draw float64
		want time.Duration
	}{
		{10 * time.Second, 0, 55 * time.Second},
		{10 * time.Second, 0.9999, 65 * time.Second},
		{30 * time.Second, 0, 54 * time.Second},
		{30 * time.Second, 0.5, 60 * time.Second},
		{time.Minute, 0.25, 57 * time.Second},
		{5 * time.Minute, 0.9999, 65*time.Second + 998800*time.Microsecond},
	} {
		s := resyncSchedule{interval: time.Minute, poll: tc.poll, draw: draws(tc.draw)}
		if got := s.next(); got != tc.want {
			t.Errorf("1m interval, %s poll, draw %v: resync after %s, want %s", tc.poll, tc.draw, got, tc.want)
		}
	}
}

// Fifty PBX of a site started together: their first resyncs, and every
// later one, fall within 10% of the interval, always
// between two polls, and spread over that span rather than at a few
// moments.
func TestResyncsOfASiteSpread(t *testing.T) {
	const interval, poll = time.Hour, 10 * time.Second
	lo, hi := interval*9/10, interval*11/10
	var hosts []resyncSchedule
	for host := range uint64(50) {
		hosts = append(hosts, resyncSchedule{interval: interval, poll: poll, draw: rand.New(rand.NewPCG(host, 1)).Float64})
	}
	for round := 1; round <= 3; round++ {
		var at []time.Duration
		slots := map[time.Duration]int{}
		for host, s := range hosts {
			d := s.next()
			if d < lo || d > hi || d%poll != poll/2 {
				t.Fatalf("resync %d of host %d after %s, want within [%s, %s] and halfway between polls", round, host, d, lo, hi)
			}
			at = append(at, d)
			slots[d]++
		}
		if span := slices.Max(at) - slices.Min(at); span < interval/10 {
			t.Errorf("resync %d: 50 hosts within %s of each other, want spread over most of %s", round, span, interval/5)
		}
		for d, n := range slots {
			if n > 5 {
				t.Errorf("resync %d: %d hosts at the same poll (%s)", round, n, d)
			}
		}
	}
}
