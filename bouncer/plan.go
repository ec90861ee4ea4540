package bouncer

import (
	"net/netip"
	"time"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/source"
)

// Planning tolerances.
const (
	// expiringSoon: an element this close to its kernel timeout is left to
	// expire rather than deleted, since deleting an element the kernel
	// has just dropped would fail the whole transaction.
	expiringSoon = 2 * time.Second
	// refreshSlack: a new end this close to the kernel's is not worth a
	// refresh (durations from LAPI are recomputed on each read).
	refreshSlack = 2 * time.Second
)

// lingerGrace: how long past its timeout an element left to expire is
// still assumed to be in the kernel (garbage collection is not instant).
const lingerGrace = time.Second

// planner turns the desired state into kernel changes, remembering what
// the kernel holds (view) and what was left there to time out (lingering).
// Backends keep each origin's elements in sets of their own, and a set
// refuses overlaps only with its own elements: overlaps are checked within
// an origin.
//
// A poll looks only at the values whose answer may have changed: those
// the tracker changed, those whose next deadline came (due), those put
// off last time (retry) and, for backends that refuse overlaps, the
// ranges inside a range among them. Every other value would plan to
// "unchanged" (docs/bouncer.md, "Cost of a poll").
type planner struct {
	view      map[netip.Prefix]want
	lingering map[copyKey]time.Time // nil when empty
	// due holds, for each value, the next time its plan may change
	// with no change of its decisions.
	due *deadlines[netip.Prefix]
	// retry holds the values put off until a lingering overlap is gone
	// (nil when empty).
	retry map[netip.Prefix]struct{}
	// ranges are the tracker's ranges, to find those inside a range
	// (only when !nested).
	ranges rangeIndex
	// cand and evals are one poll's work, kept for the next.
	cand  map[netip.Prefix]struct{}
	evals []eval
	// nested: the backend accepts overlapping ranges.
	nested bool
	// max is the longest timeout the backend takes (0: no limit). A
	// longer ban is held in the kernel for max at most and refreshed
	// before it runs out.
	max time.Duration
}

// eval is one value of a poll: what the kernel should hold (ok false:
// nothing).
type eval struct {
	p  netip.Prefix
	w  want
	ok bool
}

func newPlanner(nested bool, max time.Duration) *planner {
	return &planner{view: map[netip.Prefix]want{}, due: newDeadlines[netip.Prefix](0), cand: map[netip.Prefix]struct{}{},
		nested: nested, max: max}
}

// kernelEnd is when the kernel will drop an element wanted until until.
func (pl *planner) kernelEnd(until, now time.Time) time.Time {
	if pl.max > 0 && until.Sub(now) > pl.max {
		return now.Add(pl.max)
	}
	return until
}

// stale reports whether an element the kernel holds until old.until must
// be refreshed to end at end (w.until, or less when the backend caps it).
// A capped element is refreshed once half the cap has gone, not at every
// tick, and long before the kernel drops it.
func (pl *planner) stale(old, w want, end, now time.Time) bool {
	if end.Before(w.until) {
		return old.until.Sub(now) < pl.max/2
	}
	return w.until.Sub(old.until) > refreshSlack || old.until.Sub(w.until) > refreshSlack
}

// copyKey is an element in one origin's set.
type copyKey struct {
	prefix netip.Prefix
	origin string
}

// effective returns what the kernel must hold for p: nothing when its ban
// ends too soon or, for backends that refuse overlaps, when p is a range
// inside a wider banned range (added when the wider one ends).
func (pl *planner) effective(t *tracker, p netip.Prefix, now time.Time) (want, bool) {
	w, ok := t.wanted(p)
	if !ok || w.until.Sub(now) <= expiringSoon {
		return want{}, false
	}
	if !pl.nested && source.IsRange(p) && coveredByWider(t, p, w.origin, now) {
		return want{}, false
	}
	return w, true
}

// coveredByWider reports whether a strictly wider range of the same
// origin, still active, contains p.
func coveredByWider(t *tracker, p netip.Prefix, origin string, now time.Time) bool {
	for bits := p.Bits() - 1; bits >= 0; bits-- {
		wider := netip.PrefixFrom(p.Addr(), bits).Masked()
		if w, ok := t.wanted(wider); ok && w.origin == origin && w.until.Sub(now) > expiringSoon {
			return true
		}
	}
	return false
}

// full returns every element for a reconcile and makes it the view.
func (pl *planner) full(t *tracker, now time.Time) []Element {
	t.takeChanged(func(netip.Prefix) {})
	pl.view = make(map[netip.Prefix]want, t.values())
	pl.lingering, pl.retry = nil, nil
	pl.due = newDeadlines[netip.Prefix](t.values())
	pl.ranges.reset()
	if !pl.nested {
		t.each(func(p netip.Prefix, _ want) {
			if source.IsRange(p) {
				pl.ranges.insert(p)
			}
		})
	}
	elems := make([]Element, 0, t.values())
	t.each(func(p netip.Prefix, _ want) {
		if w, ok := pl.effective(t, p, now); ok {
			end := pl.kernelEnd(w.until, now)
			pl.view[p] = want{end, w.origin}
			elems = append(elems, Element{Prefix: p, Timeout: end.Sub(now), Origin: w.origin})
		}
		pl.schedule(t, p, now)
	})
	return elems
}

// plan returns the changes from the view to the desired state and makes
// the result the view. Call full after a failed Apply.
func (pl *planner) plan(t *tracker, now time.Time) Changes {
	for k, until := range pl.lingering {
		if now.Sub(until) > lingerGrace {
			delete(pl.lingering, k)
		}
	}
	if len(pl.lingering) == 0 {
		pl.lingering = nil // a map that once held many costs a range each poll
	}
	pl.candidates(t, now)
	var c Changes
	// Leaving first, as in the kernel's batch: an element that lingers
	// in its set must be known before an addition is checked against it.
	for _, e := range pl.evals {
		if d, ok := pl.leaving(e, now); ok {
			c.Delete = append(c.Delete, d)
		}
	}
	for _, e := range pl.evals {
		pl.enter(e, now, &c)
		pl.schedule(t, e.p, now)
	}
	return c
}

// candidates fills pl.evals with the values this poll must look at, each
// with what the kernel should now hold.
func (pl *planner) candidates(t *tracker, now time.Time) {
	add := func(p netip.Prefix) { pl.cand[p] = struct{}{} }
	t.takeChanged(func(p netip.Prefix) {
		if !pl.nested && source.IsRange(p) {
			if _, ok := t.wanted(p); ok {
				pl.ranges.insert(p)
			} else {
				pl.ranges.delete(p)
			}
		}
		add(p)
	})
	for p := range pl.retry {
		add(p)
	}
	pl.retry = nil
	pl.due.popDue(now, add)
	if !pl.nested {
		// A range's change or end may cover or uncover the ranges
		// inside it (of either its old origin or its new one).
		var wide []netip.Prefix
		for p := range pl.cand {
			if source.IsRange(p) {
				wide = append(wide, p)
			}
		}
		for _, p := range wide {
			pl.ranges.within(p, add)
		}
	}
	pl.evals = pl.evals[:0]
	for p := range pl.cand {
		w, ok := pl.effective(t, p, now)
		pl.evals = append(pl.evals, eval{p, w, ok})
	}
	pl.cand = emptied(pl.cand)
}

// leaving returns the delete of p's element when it must leave its set:
// no longer wanted, or wanted under another origin (moved to its set). An
// element about to time out is left to the kernel instead.
func (pl *planner) leaving(e eval, now time.Time) (Element, bool) {
	old, held := pl.view[e.p]
	if !held || (e.ok && e.w.origin == old.origin) {
		return Element{}, false
	}
	if old.until.Sub(now) > expiringSoon {
		return Element{Prefix: e.p, Origin: old.origin}, true
	}
	// Deleting an element the kernel is about to drop could fail the
	// whole batch: let it time out.
	if pl.lingering == nil {
		pl.lingering = map[copyKey]time.Time{}
	}
	pl.lingering[copyKey{e.p, old.origin}] = old.until
	return Element{}, false
}

// enter puts in c what p's element needs (add, renew, refresh, or
// nothing) and updates the view.
func (pl *planner) enter(e eval, now time.Time, c *Changes) {
	old, held := pl.view[e.p]
	if !e.ok {
		delete(pl.view, e.p)
		return
	}
	w := e.w
	here := copyKey{e.p, w.origin}
	_, lingers := pl.lingering[here]
	expiring := held && old.origin == w.origin && old.until.Sub(now) <= expiringSoon
	end := pl.kernelEnd(w.until, now)
	el := Element{Prefix: e.p, Timeout: end.Sub(now), Origin: w.origin}
	switch {
	case !held || old.origin != w.origin || expiring:
		if !pl.nested && source.IsRange(e.p) && pl.overlapsLingering(here) {
			// The kernel would refuse it: next poll.
			delete(pl.view, e.p)
			if pl.retry == nil {
				pl.retry = map[netip.Prefix]struct{}{}
			}
			pl.retry[e.p] = struct{}{}
			return
		}
		delete(pl.lingering, here)
		if expiring || lingers {
			// The old copy may still be in this set, or gone: a plain
			// add would keep its old timeout on many kernels.
			c.Renew = append(c.Renew, el)
		} else {
			c.Add = append(c.Add, el)
		}
	case pl.stale(old, w, end, now):
		c.Refresh = append(c.Refresh, el)
	default:
		return // unchanged: the kernel's end stays
	}
	pl.view[e.p] = want{end, w.origin}
}

// schedule records when p's plan may next change by time alone: its ban
// coming within expiringSoon of its end, the kernel's copy doing so, and
// with capped timeouts its end coming within the cap or half the cap of
// the kernel's copy having gone (the thresholds of effective, enter and
// stale).
func (pl *planner) schedule(t *tracker, p netip.Prefix, now time.Time) {
	var next time.Time
	sooner := func(at time.Time) {
		if at.After(now) && (next.IsZero() || at.Before(next)) {
			next = at
		}
	}
	if w, ok := t.wanted(p); ok {
		sooner(w.until.Add(-expiringSoon))
		if pl.max > 0 {
			sooner(w.until.Add(-pl.max))
		}
	}
	if v, ok := pl.view[p]; ok {
		sooner(v.until.Add(-expiringSoon))
		if pl.max > 0 {
			sooner(v.until.Add(-pl.max/2 + time.Nanosecond))
		}
	}
	if next.IsZero() {
		pl.due.remove(p)
		return
	}
	pl.due.set(p, next)
}

// overlapsLingering reports whether another range of the same origin,
// still in the kernel and left there to time out, overlaps k's prefix.
func (pl *planner) overlapsLingering(k copyKey) bool {
	for q := range pl.lingering {
		if q.origin == k.origin && q.prefix != k.prefix && source.IsRange(q.prefix) && q.prefix.Overlaps(k.prefix) {
			return true
		}
	}
	return false
}

func (pl *planner) size() int { return len(pl.view) }
