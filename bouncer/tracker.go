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

// want is what the kernel should hold for one value: its ban's end and
// the origin its drops are counted under.
type want struct {
	until  time.Time
	origin string
}

// desired returns each value with the end of its longest decision and
// that decision's origin (on a tie, the origin first in byte order, so
// that the choice does not change from one tick to the next).
func (t *tracker) desired() map[netip.Prefix]want {
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

func (t *tracker) decisions() int { return len(t.byID) }

// byOrigin counts the active decisions of each origin.
func (t *tracker) byOrigin() map[string]int {
	out := map[string]int{}
	for _, o := range t.origin {
		out[o]++
	}
	return out
}
