package bouncer

import "time"

// deadlines orders keys by a time, soonest first, each key at most once: a
// poll takes what is due instead of looking at everything held
// (docs/bouncer.md, "Cost of a poll").
type deadlines[K comparable] struct {
	heap []deadline[K]
	at   map[K]int // index in heap
}

type deadline[K comparable] struct {
	key K
	t   time.Time
}

// newDeadlines returns deadlines with room for n keys.
func newDeadlines[K comparable](n int) *deadlines[K] {
	return &deadlines[K]{heap: make([]deadline[K], 0, n), at: make(map[K]int, n)}
}

func (d *deadlines[K]) len() int { return len(d.heap) }

// set gives k the time t, adding k or moving it.
func (d *deadlines[K]) set(k K, t time.Time) {
	if i, ok := d.at[k]; ok {
		d.heap[i].t = t
		d.fix(i)
		return
	}
	d.heap = append(d.heap, deadline[K]{k, t})
	d.at[k] = len(d.heap) - 1
	d.up(len(d.heap) - 1)
}

// remove forgets k; an unknown key is ignored.
func (d *deadlines[K]) remove(k K) {
	i, ok := d.at[k]
	if !ok {
		return
	}
	last := len(d.heap) - 1
	d.swap(i, last)
	d.heap = d.heap[:last]
	delete(d.at, k)
	if i < last {
		d.fix(i)
	}
}

// next returns the key with the soonest time.
func (d *deadlines[K]) next() (K, time.Time, bool) {
	if len(d.heap) == 0 {
		var zero K
		return zero, time.Time{}, false
	}
	return d.heap[0].key, d.heap[0].t, true
}

// popDue removes and passes to fn each key whose time is not after now.
func (d *deadlines[K]) popDue(now time.Time, fn func(K)) {
	for {
		k, t, ok := d.next()
		if !ok || t.After(now) {
			return
		}
		d.remove(k)
		fn(k)
	}
}

func (d *deadlines[K]) fix(i int) {
	if !d.up(i) {
		d.down(i)
	}
}

func (d *deadlines[K]) up(i int) bool {
	moved := false
	for i > 0 {
		parent := (i - 1) / 2
		if !d.heap[i].t.Before(d.heap[parent].t) {
			break
		}
		d.swap(i, parent)
		i, moved = parent, true
	}
	return moved
}

func (d *deadlines[K]) down(i int) {
	for {
		least := i
		if l := 2*i + 1; l < len(d.heap) && d.heap[l].t.Before(d.heap[least].t) {
			least = l
		}
		if r := 2*i + 2; r < len(d.heap) && d.heap[r].t.Before(d.heap[least].t) {
			least = r
		}
		if least == i {
			return
		}
		d.swap(i, least)
		i = least
	}
}

func (d *deadlines[K]) swap(i, j int) {
	d.heap[i], d.heap[j] = d.heap[j], d.heap[i]
	d.at[d.heap[i].key] = i
	d.at[d.heap[j].key] = j
}
