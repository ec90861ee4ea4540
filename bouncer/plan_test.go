package bouncer

import (
	"cmp"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"
)

// The values of the random histories: addresses, and ranges nested in
// each other (within an origin and across two).
var planValues = func() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range []string{
		"192.0.2.1/32", "192.0.2.2/32", "192.0.2.3/32", "198.51.100.7/32", "198.51.100.130/32", "2001:db8::1/128", "2001:db8:1::5/128",
		"198.51.100.0/24", "198.51.100.0/25", "198.51.100.128/25", "198.51.100.0/26", "198.51.100.64/26", "198.51.100.128/28",
		"203.0.113.0/24", "203.0.113.16/28", "2001:db8:1::/48", "2001:db8:1:1::/64", "2001:db8:1:2::/64",
	} {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}()

// twin drives a tracker and planner and the full-recompute ones of
// reference_test.go through the same history, and fails on the first poll
// where they differ: in the changes for the kernel, in what each believes
// the kernel holds or left there to time out, or in the decisions held.
// seen counts each kind of change.
type twin struct {
	t    *testing.T
	tr   *tracker
	pl   *planner
	rt   *refTracker
	rp   *refPlanner
	seen map[string]int
}

func newTwin(t *testing.T, nested bool, max time.Duration) *twin {
	return &twin{t: t, tr: newTracker(), pl: newPlanner(nested, max), rt: newRefTracker(), rp: newRefPlanner(nested, max), seen: map[string]int{}}
}

func (w *twin) add(id int64, p netip.Prefix, until time.Time, origin string) {
	w.tr.add(id, p, until, origin)
	w.rt.add(id, p, until, origin)
}

func (w *twin) remove(id int64) {
	w.tr.remove(id)
	w.rt.remove(id)
}

// poll plans at now (a rebuild when full) on both sides, compares them
// and returns the changes.
func (w *twin) poll(now time.Time, full bool, where string) Changes {
	w.t.Helper()
	w.tr.expire(now)
	w.rt.expire(now)
	if got, want := desiredOf(w.tr), w.rt.desired(); !maps.Equal(got, want) {
		w.t.Fatalf("%s: tracker wants %v, the full recompute %v", where, got, want)
	}
	if got, want := w.tr.byOrigin(), w.rt.byOrigin(); !maps.Equal(got, want) || w.tr.decisions() != w.rt.decisions() {
		w.t.Fatalf("%s: tracker counts %v (%d), the full recompute %v (%d)", where, got, w.tr.decisions(), want, w.rt.decisions())
	}
	var got Changes
	if full {
		elems, want := w.pl.full(w.tr, now), w.rp.full(w.rt.desired(), now)
		sortElements(elems)
		sortElements(want)
		if !slices.Equal(elems, want) {
			w.t.Fatalf("%s: full load %v, the full recompute %v", where, elems, want)
		}
		w.seen["full"]++
	} else {
		var want Changes
		got, want = w.pl.plan(w.tr, now), w.rp.plan(w.rt.desired(), now)
		for _, c := range []*Changes{&got, &want} {
			for _, l := range []*[]Element{&c.Delete, &c.Refresh, &c.Renew, &c.Add} {
				sortElements(*l)
				if len(*l) == 0 {
					*l = nil
				}
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			w.t.Fatalf("%s: changes\n %+v\nthe full recompute\n %+v", where, got, want)
		}
		w.seen["delete"] += len(got.Delete)
		w.seen["refresh"] += len(got.Refresh)
		w.seen["renew"] += len(got.Renew)
		w.seen["add"] += len(got.Add)
		w.seen["put off"] += len(w.pl.retry)
	}
	if !maps.Equal(w.pl.view, w.rp.view) {
		w.t.Fatalf("%s: kernel view %v, the full recompute %v", where, w.pl.view, w.rp.view)
	}
	if !maps.Equal(w.pl.lingering, w.rp.lingering) && len(w.pl.lingering)+len(w.rp.lingering) > 0 {
		w.t.Fatalf("%s: lingering %v, the full recompute %v", where, w.pl.lingering, w.rp.lingering)
	}
	w.seen["lingering"] += len(w.pl.lingering)
	return got
}

// planSteps runs a twin through a random history of additions, deletions,
// re-sent decisions, expiries and rebuilds.
func planSteps(t *testing.T, seed uint64, nested bool, max time.Duration, steps int) map[string]int {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 7))
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	w := newTwin(t, nested, max)
	lives := []time.Duration{time.Second, 3 * time.Second, 10 * time.Second, 30 * time.Second, time.Minute, 2 * time.Minute, 5 * time.Minute, time.Hour}
	advances := []time.Duration{0, 500 * time.Millisecond, time.Second, 1300 * time.Millisecond, 2 * time.Second, 3 * time.Second, 10 * time.Second, 30 * time.Second, 2 * time.Minute}
	for step := range steps {
		for range r.IntN(4) {
			id := int64(1 + r.IntN(30))
			if d, held := w.tr.byID[id]; held && r.IntN(10) < 3 {
				// Sent again, its end read a little differently
				// (LAPI sends what is left, recomputed).
				w.add(id, d.prefix, d.until.Add(time.Duration(r.IntN(7)-3)*700*time.Millisecond), d.origin)
			} else if r.IntN(10) < 6 {
				w.add(id, planValues[r.IntN(len(planValues))], now.Add(lives[r.IntN(len(lives))]), []string{"a", "b"}[r.IntN(2)])
			} else {
				w.remove(id)
			}
		}
		now = now.Add(advances[r.IntN(len(advances))])
		// The first poll, or a refused batch: a rebuild.
		w.poll(now, step == 0 || r.IntN(20) == 0, fmt.Sprintf("seed %d, nested %v, max %s, step %d", seed, nested, max, step))
	}
	return w.seen
}

// A decision sent again with an end a little earlier or later than the
// kernel's copy (within refreshSlack: no refresh): the copy is renewed
// when it comes near its own end first, deleted when the ban comes near
// its end first. Each is a deadline a poll must not miss.
func TestPollMeetsEachDeadline(t *testing.T) {
	for _, tc := range []struct {
		name  string
		shift time.Duration // of the ban's end, against the kernel's copy
		at    time.Duration // the poll between the two deadlines
		want  string
	}{
		{"copy ends first", 1400 * time.Millisecond, 58500 * time.Millisecond, "renew"},
		{"ban ends first", -1400 * time.Millisecond, 56800 * time.Millisecond, "delete"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			p := netip.MustParsePrefix("192.0.2.1/32")
			w := newTwin(t, false, 0)
			w.add(1, p, start.Add(time.Minute), "a")
			w.poll(start, true, "load")
			w.add(1, p, start.Add(time.Minute+tc.shift), "a")
			if c := w.poll(start.Add(10*time.Second), false, "sent again"); !c.Empty() {
				t.Fatalf("sent again within refreshSlack: %+v", c)
			}
			w.poll(start.Add(tc.at), false, "between the deadlines")
			if w.seen[tc.want] != 1 {
				t.Errorf("want one %s, saw %v", tc.want, w.seen)
			}
		})
	}
}

func desiredOf(t *tracker) map[netip.Prefix]want {
	out := map[netip.Prefix]want{}
	t.each(func(p netip.Prefix, w want) { out[p] = w })
	return out
}

func sortElements(es []Element) {
	slices.SortFunc(es, func(a, b Element) int {
		return cmp.Or(comparePrefixes(a.Prefix, b.Prefix), cmp.Compare(a.Origin, b.Origin), cmp.Compare(a.Timeout, b.Timeout))
	})
}

// TestIncrementalPlanMatchesFullRecompute: a poll that looks only at what
// changed or came due plans exactly what recomputing everything did, for
// both kinds of backend and with capped timeouts, over random histories
// of additions, deletions, re-sent decisions, expiries and rebuilds. The
// histories must reach every kind of change, or the test proves little.
func TestIncrementalPlanMatchesFullRecompute(t *testing.T) {
	for _, nested := range []bool{false, true} {
		for _, max := range []time.Duration{0, 3 * time.Minute} {
			total := map[string]int{}
			for seed := range uint64(40) {
				for k, n := range planSteps(t, seed, nested, max, 400) {
					total[k] += n
				}
			}
			kinds := []string{"full", "delete", "refresh", "renew", "add", "lingering"}
			if !nested {
				kinds = append(kinds, "put off")
			}
			for _, k := range kinds {
				if total[k] == 0 {
					t.Errorf("nested %v, max %s: no %s in the histories (%v)", nested, max, k, total)
				}
			}
		}
	}
}

// The poll's own cost: after a change to one value, the planner looks at
// that value (and, for a range, the ranges inside it), not at the others.
func TestPollLooksOnlyAtWhatChanged(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tr, pl := newTracker(), newPlanner(false, 0)
	for i := range 1000 {
		tr.add(int64(i+1), netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 0, byte(2 + i/250), byte(i % 250)}), 32), now.Add(time.Hour), "a")
	}
	tr.add(2001, netip.MustParsePrefix("198.51.100.0/24"), now.Add(time.Hour), "a")
	tr.add(2002, netip.MustParsePrefix("198.51.100.0/26"), now.Add(2*time.Hour), "a")
	tr.add(2003, netip.MustParsePrefix("203.0.113.0/24"), now.Add(2*time.Hour), "a")
	pl.full(tr, now)

	now = now.Add(10 * time.Second)
	tr.add(3001, netip.MustParsePrefix("192.0.2.251/32"), now.Add(time.Hour), "a")
	tr.remove(5)
	c := pl.plan(tr, now)
	if len(pl.evals) != 2 || len(c.Add) != 1 || len(c.Delete) != 1 {
		t.Errorf("two addresses changed: looked at %d values, planned %+v", len(pl.evals), c)
	}

	now = now.Add(10 * time.Second)
	tr.remove(2001) // the wider range goes: the one inside it comes
	c = pl.plan(tr, now)
	if len(pl.evals) != 2 || len(c.Delete) != 1 || len(c.Add) != 1 || c.Add[0].Prefix != netip.MustParsePrefix("198.51.100.0/26") {
		t.Errorf("a range went: looked at %d values, planned %+v", len(pl.evals), c)
	}

	now = now.Add(10 * time.Second)
	if c = pl.plan(tr, now); !c.Empty() || len(pl.evals) != 0 {
		t.Errorf("nothing changed: looked at %d values, planned %+v", len(pl.evals), c)
	}
}
