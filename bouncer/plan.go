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
type planner struct {
	view      map[netip.Prefix]want
	lingering map[copyKey]time.Time
	// nested: the backend accepts overlapping ranges.
	nested bool
	// max is the longest timeout the backend takes (0: no limit). A
	// longer ban is held in the kernel for max at most and refreshed
	// before it runs out.
	max time.Duration
}

func newPlanner(nested bool, max time.Duration) *planner {
	return &planner{view: map[netip.Prefix]want{}, lingering: map[copyKey]time.Time{}, nested: nested, max: max}
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

// effective drops what the kernel must not or need not hold: values whose
// ban ends too soon, and, for backends that refuse overlaps, ranges inside
// a wider banned range (they are added when the wider one ends).
func (pl *planner) effective(desired map[netip.Prefix]want, now time.Time) map[netip.Prefix]want {
	out := make(map[netip.Prefix]want, len(desired))
	for p, w := range desired {
		if w.until.Sub(now) <= expiringSoon {
			continue
		}
		if !pl.nested && source.IsRange(p) && coveredByWider(desired, p, w.origin, now) {
			continue
		}
		out[p] = w
	}
	return out
}

// coveredByWider reports whether a strictly wider range of the same
// origin in desired, still active, contains p.
func coveredByWider(desired map[netip.Prefix]want, p netip.Prefix, origin string, now time.Time) bool {
	for bits := p.Bits() - 1; bits >= 0; bits-- {
		wider := netip.PrefixFrom(p.Addr(), bits).Masked()
		if w, ok := desired[wider]; ok && w.origin == origin && w.until.Sub(now) > expiringSoon {
			return true
		}
	}
	return false
}

// full returns every element for a reconcile and makes it the view.
func (pl *planner) full(desired map[netip.Prefix]want, now time.Time) []Element {
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
func (pl *planner) plan(desired map[netip.Prefix]want, now time.Time) Changes {
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
func (pl *planner) leaving(eff map[netip.Prefix]want, now time.Time) []Element {
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
func (pl *planner) overlapsLingering(k copyKey) bool {
	for q := range pl.lingering {
		if q.origin == k.origin && q.prefix != k.prefix && source.IsRange(q.prefix) && q.prefix.Overlaps(k.prefix) {
			return true
		}
	}
	return false
}

func (pl *planner) size() int { return len(pl.view) }
