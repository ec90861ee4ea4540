package bouncer

// The tracker and planner as they were before polls became incremental
// (commit 5aa833a): every poll rebuilt the whole desired state and compared
// it with the kernel's. Kept as the oracle of
// TestIncrementalPlanMatchesFullRecompute; the bouncer does not use them.

import (
	"net/netip"
	"time"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/source"
)

// refTracker holds every active ban decision per value. LAPI may hold several
// decisions for one value (several origins, a short and a long one): the
// value stays banned until its longest decision ends, and a deleted
// decision only removes itself.
type refTracker struct {
	byValue map[netip.Prefix]map[int64]time.Time
	byID    map[int64]netip.Prefix
	origin  map[int64]string
}

func newRefTracker() *refTracker {
	return &refTracker{byValue: map[netip.Prefix]map[int64]time.Time{}, byID: map[int64]netip.Prefix{}, origin: map[int64]string{}}
}

func (t *refTracker) add(id int64, p netip.Prefix, until time.Time, origin string) {
	if old, ok := t.byID[id]; ok && old != p {
		t.remove(id)
	}
	ds := t.byValue[p]
	if ds == nil {
		ds = map[int64]time.Time{}
		t.byValue[p] = ds
	}
	ds[id] = until
	t.byID[id] = p
	t.origin[id] = origin
}

// remove forgets one decision; an unknown id is ignored.
func (t *refTracker) remove(id int64) {
	p, ok := t.byID[id]
	if !ok {
		return
	}
	delete(t.byID, id)
	delete(t.origin, id)
	ds := t.byValue[p]
	delete(ds, id)
	if len(ds) == 0 {
		delete(t.byValue, p)
	}
}

// expire forgets the decisions that ended by now.
func (t *refTracker) expire(now time.Time) {
	for p, ds := range t.byValue {
		for id, until := range ds {
			if !until.After(now) {
				delete(ds, id)
				delete(t.byID, id)
				delete(t.origin, id)
			}
		}
		if len(ds) == 0 {
			delete(t.byValue, p)
		}
	}
}

// desired returns each value with the end of its longest decision and
// that decision's origin (on a tie, the origin first in byte order, so
// that the choice does not change from one tick to the next).
func (t *refTracker) desired() map[netip.Prefix]want {
	out := make(map[netip.Prefix]want, len(t.byValue))
	for p, ds := range t.byValue {
		var best want
		for id, until := range ds {
			o := t.origin[id]
			if until.After(best.until) || (until.Equal(best.until) && o < best.origin) {
				best = want{until, o}
			}
		}
		out[p] = best
	}
	return out
}

func (t *refTracker) decisions() int { return len(t.byID) }

// byOrigin counts the active decisions of each origin.
func (t *refTracker) byOrigin() map[string]int {
	out := map[string]int{}
	for _, o := range t.origin {
		out[o]++
	}
	return out
}

// refPlanner turns the desired state into kernel changes, remembering what
// the kernel holds (view) and what was left there to time out (lingering).
// Backends keep each origin's elements in sets of their own, and a set
// refuses overlaps only with its own elements: overlaps are checked within
// an origin.
type refPlanner struct {
	view      map[netip.Prefix]want
	lingering map[copyKey]time.Time
	// nested: the backend accepts overlapping ranges.
	nested bool
	// max is the longest timeout the backend takes (0: no limit). A
	// longer ban is held in the kernel for max at most and refreshed
	// before it runs out.
	max time.Duration
}

func newRefPlanner(nested bool, max time.Duration) *refPlanner {
	return &refPlanner{view: map[netip.Prefix]want{}, lingering: map[copyKey]time.Time{}, nested: nested, max: max}
}

// kernelEnd is when the kernel will drop an element wanted until until.
func (pl *refPlanner) kernelEnd(until, now time.Time) time.Time {
	if pl.max > 0 && until.Sub(now) > pl.max {
		return now.Add(pl.max)
	}
	return until
}

// stale reports whether an element the kernel holds until old.until must
// be refreshed to end at end (w.until, or less when the backend caps it).
// A capped element is refreshed once half the cap has gone, not at every
// tick, and long before the kernel drops it.
func (pl *refPlanner) stale(old, w want, end, now time.Time) bool {
	if end.Before(w.until) {
		return old.until.Sub(now) < pl.max/2
	}
	return w.until.Sub(old.until) > refreshSlack || old.until.Sub(w.until) > refreshSlack
}

// effective drops what the kernel must not or need not hold: values whose
// ban ends too soon, and, for backends that refuse overlaps, ranges inside
// a wider banned range (they are added when the wider one ends).
func (pl *refPlanner) effective(desired map[netip.Prefix]want, now time.Time) map[netip.Prefix]want {
	out := make(map[netip.Prefix]want, len(desired))
	for p, w := range desired {
		if w.until.Sub(now) <= expiringSoon {
			continue
		}
		if !pl.nested && source.IsRange(p) && refCoveredByWider(desired, p, w.origin, now) {
			continue
		}
		out[p] = w
	}
	return out
}

// coveredByWider reports whether a strictly wider range of the same
// origin in desired, still active, contains p.
func refCoveredByWider(desired map[netip.Prefix]want, p netip.Prefix, origin string, now time.Time) bool {
	for bits := p.Bits() - 1; bits >= 0; bits-- {
		wider := netip.PrefixFrom(p.Addr(), bits).Masked()
		if w, ok := desired[wider]; ok && w.origin == origin && w.until.Sub(now) > expiringSoon {
			return true
		}
	}
	return false
}

// full returns every element for a reconcile and makes it the view.
func (pl *refPlanner) full(desired map[netip.Prefix]want, now time.Time) []Element {
	eff := pl.effective(desired, now)
	pl.view = make(map[netip.Prefix]want, len(eff))
	pl.lingering = map[copyKey]time.Time{}
	elems := make([]Element, 0, len(eff))
	for p, w := range eff {
		end := pl.kernelEnd(w.until, now)
		pl.view[p] = want{end, w.origin}
		elems = append(elems, Element{Prefix: p, Timeout: end.Sub(now), Origin: w.origin})
	}
	return elems
}

// plan returns the changes from the view to the desired state and makes
// the result the view. Call full after a failed Apply.
func (pl *refPlanner) plan(desired map[netip.Prefix]want, now time.Time) Changes {
	for k, until := range pl.lingering {
		if now.Sub(until) > lingerGrace {
			delete(pl.lingering, k)
		}
	}
	eff := pl.effective(desired, now)
	c := Changes{Delete: pl.leaving(eff, now)}
	next := make(map[netip.Prefix]want, len(eff))
	for p, w := range eff {
		old, ok := pl.view[p]
		here := copyKey{p, w.origin}
		_, lingers := pl.lingering[here]
		expiring := ok && old.origin == w.origin && old.until.Sub(now) <= expiringSoon
		end := pl.kernelEnd(w.until, now)
		e := Element{Prefix: p, Timeout: end.Sub(now), Origin: w.origin}
		switch {
		case !ok || old.origin != w.origin || expiring:
			if !pl.nested && source.IsRange(p) && pl.overlapsLingering(here) {
				continue // the kernel would refuse it: next tick
			}
			delete(pl.lingering, here)
			if expiring || lingers {
				// The old copy may still be in this set, or gone: a plain
				// add would keep its old timeout on many kernels.
				c.Renew = append(c.Renew, e)
			} else {
				c.Add = append(c.Add, e)
			}
		case pl.stale(old, w, end, now):
			c.Refresh = append(c.Refresh, e)
		default:
			next[p] = old // unchanged: the kernel's end stays
			continue
		}
		next[p] = want{end, w.origin}
	}
	pl.view = next
	return c
}

// leaving returns the elements of the view that must leave their set: no
// longer wanted, or wanted under another origin (moved to its set).
// Elements about to time out are left to the kernel instead.
func (pl *refPlanner) leaving(eff map[netip.Prefix]want, now time.Time) []Element {
	var out []Element
	for p, old := range pl.view {
		if w, keep := eff[p]; keep && w.origin == old.origin {
			continue
		}
		if old.until.Sub(now) > expiringSoon {
			out = append(out, Element{Prefix: p, Origin: old.origin})
		} else {
			// Deleting an element the kernel is about to drop could
			// fail the whole batch: let it time out.
			pl.lingering[copyKey{p, old.origin}] = old.until
		}
	}
	return out
}

// overlapsLingering reports whether another range of the same origin,
// still in the kernel and left there to time out, overlaps k's prefix.
func (pl *refPlanner) overlapsLingering(k copyKey) bool {
	for q := range pl.lingering {
		if q.origin == k.origin && q.prefix != k.prefix && source.IsRange(q.prefix) && q.prefix.Overlaps(k.prefix) {
			return true
		}
	}
	return false
}

func (pl *refPlanner) size() int { return len(pl.view) }
