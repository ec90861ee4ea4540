package bouncer

import (
	"maps"
	"net/netip"
	"slices"
	"time"
)

// tracker holds every active ban decision per value. LAPI may hold several
// decisions for one value (several origins, a short and a long one): the
// value stays banned until its longest decision ends, and a deleted
// decision only removes itself. Every change is kept up to date as it
// happens (the winner of each value, the counts, the order of the ends),
// and the values it touched are noted for the planner: a poll costs what
// it changes, not what is held.
type tracker struct {
	byValue map[netip.Prefix]value
	byID    map[int64]decision
	ends    *deadlines[int64] // decision IDs by end
	origins map[string]int    // active decisions per origin
	// changed holds the values whose decisions changed since takeChanged.
	changed map[netip.Prefix]struct{}
}

type decision struct {
	prefix netip.Prefix
	until  time.Time
	origin string
}

// value is one address or range: its decisions, and the one that wins.
type value struct {
	ids  []int64
	best want
}

func newTracker() *tracker {
	return &tracker{byValue: map[netip.Prefix]value{}, byID: map[int64]decision{}, ends: newDeadlines[int64](0),
		origins: map[string]int{}, changed: map[netip.Prefix]struct{}{}}
}

func (t *tracker) add(id int64, p netip.Prefix, until time.Time, origin string) {
	t.remove(id) // a decision sent again replaces its old copy
	t.byID[id] = decision{prefix: p, until: until, origin: origin}
	t.ends.set(id, until)
	t.origins[origin]++
	v := t.byValue[p]
	v.ids = append(v.ids, id)
	t.settle(p, v)
}

// remove forgets one decision; an unknown id is ignored.
func (t *tracker) remove(id int64) {
	d, ok := t.byID[id]
	if !ok {
		return
	}
	delete(t.byID, id)
	t.ends.remove(id)
	if t.origins[d.origin]--; t.origins[d.origin] == 0 {
		delete(t.origins, d.origin)
	}
	v := t.byValue[d.prefix]
	v.ids = slices.DeleteFunc(v.ids, func(x int64) bool { return x == id })
	if len(v.ids) == 0 {
		delete(t.byValue, d.prefix)
		t.changed[d.prefix] = struct{}{}
		return
	}
	t.settle(d.prefix, v)
}

// settle stores the value with its winner picked again: the end of its
// longest decision and that decision's origin (on a tie, the origin first
// in byte order, so that the choice does not change from one tick to the
// next).
func (t *tracker) settle(p netip.Prefix, v value) {
	var best want
	for _, id := range v.ids {
		d := t.byID[id]
		if d.until.After(best.until) || (d.until.Equal(best.until) && d.origin < best.origin) {
			best = want{d.until, d.origin}
		}
	}
	v.best = best
	t.byValue[p] = v
	t.changed[p] = struct{}{}
}

// expire forgets the decisions that ended by now.
func (t *tracker) expire(now time.Time) {
	t.ends.popDue(now, t.remove)
}

// want is what the kernel should hold for one value: its ban's end and
// the origin its drops are counted under.
type want struct {
	until  time.Time
	origin string
}

// wanted returns what the kernel should hold for p.
func (t *tracker) wanted(p netip.Prefix) (want, bool) {
	v, ok := t.byValue[p]
	if !ok {
		return want{}, false
	}
	return v.best, true
}

// each calls fn with every value and its want (a full load, a resync).
func (t *tracker) each(fn func(netip.Prefix, want)) {
	for p, v := range t.byValue {
		fn(p, v.best)
	}
}

func (t *tracker) values() int { return len(t.byValue) }

// takeChanged calls fn with each value changed since the last call.
func (t *tracker) takeChanged(fn func(netip.Prefix)) {
	for p := range t.changed {
		fn(p)
	}
	t.changed = emptied(t.changed)
}

// emptied returns m empty: cleared when small, replaced when large, since
// a Go map keeps its buckets and every later range or clear visits them.
func emptied[K comparable, V any](m map[K]V) map[K]V {
	if len(m) > 64 {
		return make(map[K]V)
	}
	clear(m)
	return m
}

func (t *tracker) decisions() int { return len(t.byID) }

// byOrigin counts the active decisions of each origin.
func (t *tracker) byOrigin() map[string]int { return maps.Clone(t.origins) }
