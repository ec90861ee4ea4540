package bouncer

import (
	"net/netip"
	"time"
)

// tracker holds every active ban decision per value. LAPI may hold several
// decisions for one value (several origins, a short and a long one): the
// value stays banned until its longest decision ends, and a deleted
// decision only removes itself.
type tracker struct {
	byValue map[netip.Prefix]map[int64]time.Time
	byID    map[int64]netip.Prefix
	origin  map[int64]string
}

func newTracker() *tracker {
	return &tracker{byValue: map[netip.Prefix]map[int64]time.Time{}, byID: map[int64]netip.Prefix{}, origin: map[int64]string{}}
}

func (t *tracker) add(id int64, p netip.Prefix, until time.Time, origin string) {
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
func (t *tracker) remove(id int64) {
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
func (t *tracker) expire(now time.Time) {
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

// desired returns each value with the end of its longest decision.
func (t *tracker) desired() map[netip.Prefix]time.Time {
	out := make(map[netip.Prefix]time.Time, len(t.byValue))
	for p, ds := range t.byValue {
		var last time.Time
		for _, until := range ds {
			if until.After(last) {
				last = until
			}
		}
		out[p] = last
	}
	return out
}

func (t *tracker) decisions() int { return len(t.byID) }

// byOrigin counts the active decisions of each origin.
func (t *tracker) byOrigin() map[string]int {
	out := map[string]int{}
	for _, o := range t.origin {
		out[o]++
	}
	return out
}

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
type planner struct {
	view      map[netip.Prefix]time.Time
	lingering map[netip.Prefix]time.Time
	// nested: the backend accepts overlapping ranges.
	nested bool
}

func newPlanner(nested bool) *planner {
	return &planner{view: map[netip.Prefix]time.Time{}, lingering: map[netip.Prefix]time.Time{}, nested: nested}
}

// effective drops what the kernel must not or need not hold: values whose
// ban ends too soon, and, for backends that refuse overlaps, ranges inside
// a wider banned range (they are added when the wider one ends).
func (pl *planner) effective(desired map[netip.Prefix]time.Time, now time.Time) map[netip.Prefix]time.Time {
	out := make(map[netip.Prefix]time.Time, len(desired))
	for p, until := range desired {
		if until.Sub(now) <= expiringSoon {
			continue
		}
		if !pl.nested && isRange(p) && coveredByWider(desired, p, now) {
			continue
		}
		out[p] = until
	}
	return out
}

// coveredByWider reports whether a strictly wider range in desired, still
// active, contains p.
func coveredByWider(desired map[netip.Prefix]time.Time, p netip.Prefix, now time.Time) bool {
	for bits := p.Bits() - 1; bits >= 0; bits-- {
		wider := netip.PrefixFrom(p.Addr(), bits).Masked()
		if until, ok := desired[wider]; ok && until.Sub(now) > expiringSoon {
			return true
		}
	}
	return false
}

func isRange(p netip.Prefix) bool { return p.Bits() < p.Addr().BitLen() }

// full returns every element for a reconcile and makes it the view.
func (pl *planner) full(desired map[netip.Prefix]time.Time, now time.Time) []Element {
	eff := pl.effective(desired, now)
	pl.view = eff
	pl.lingering = map[netip.Prefix]time.Time{}
	elems := make([]Element, 0, len(eff))
	for p, until := range eff {
		elems = append(elems, Element{Prefix: p, Timeout: until.Sub(now)})
	}
	return elems
}

// plan returns the changes from the view to the desired state and makes
// the result the view. Call full after a failed Apply.
func (pl *planner) plan(desired map[netip.Prefix]time.Time, now time.Time) Changes {
	for p, until := range pl.lingering {
		if now.Sub(until) > lingerGrace {
			delete(pl.lingering, p)
		}
	}
	eff := pl.effective(desired, now)
	var c Changes
	for p, until := range pl.view {
		if _, keep := eff[p]; keep {
			continue
		}
		if until.Sub(now) > expiringSoon {
			c.Delete = append(c.Delete, p)
		} else {
			// Deleting an element the kernel is about to drop could
			// fail the whole batch: let it time out.
			pl.lingering[p] = until
		}
	}
	next := make(map[netip.Prefix]time.Time, len(eff))
	for p, until := range eff {
		old, ok := pl.view[p]
		switch {
		case !ok || old.Sub(now) <= expiringSoon:
			if !pl.nested && isRange(p) && pl.overlapsLingering(p) {
				continue // the kernel would refuse it: next tick
			}
			delete(pl.lingering, p)
			c.Add = append(c.Add, Element{Prefix: p, Timeout: until.Sub(now)})
		case until.Sub(old) > refreshSlack || old.Sub(until) > refreshSlack:
			c.Refresh = append(c.Refresh, Element{Prefix: p, Timeout: until.Sub(now)})
		}
		next[p] = until
	}
	pl.view = next
	return c
}

// overlapsLingering reports whether another range still in the kernel,
// left there to time out, overlaps p.
func (pl *planner) overlapsLingering(p netip.Prefix) bool {
	for q := range pl.lingering {
		if q != p && isRange(q) && q.Overlaps(p) {
			return true
		}
	}
	return false
}

func (pl *planner) size() int { return len(pl.view) }
