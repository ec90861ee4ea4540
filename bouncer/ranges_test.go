package bouncer

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"
)

// randomPrefix is a prefix of 198.51.100.0/22 or 2001:db8::/44, of any
// length from there down to one address, so that many nest.
func randomPrefix(r *rand.Rand) netip.Prefix {
	if r.IntN(4) == 0 {
		var a [16]byte
		copy(a[:], netip.MustParseAddr("2001:db8::").AsSlice())
		a[5] = byte(r.IntN(16))
		a[15] = byte(r.IntN(256))
		return netip.PrefixFrom(netip.AddrFrom16(a), 44+r.IntN(85)).Masked()
	}
	a := netip.AddrFrom4([4]byte{198, 51, 100 + byte(r.IntN(4)), byte(r.IntN(256))})
	return netip.PrefixFrom(a, 22+r.IntN(11)).Masked()
}

// The index against a plain set: after each insert or delete (thousands,
// so that chunks split and empty), the prefixes within a random prefix
// are exactly those a scan of the set finds, and the index stays sorted.
func TestRangeIndexWithin(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var x rangeIndex
	set := map[netip.Prefix]bool{}
	for step := range 6000 {
		p := randomPrefix(r)
		if r.IntN(3) == 0 {
			x.delete(p)
			delete(set, p)
		} else {
			x.insert(p)
			set[p] = true
		}
		if step%50 != 0 {
			continue
		}
		all := slices.Concat(x.chunks...)
		if len(all) != len(set) || !slices.IsSortedFunc(all, comparePrefixes) {
			t.Fatalf("step %d: index holds %d prefixes (sorted %v), the set %d", step, len(all), slices.IsSortedFunc(all, comparePrefixes), len(set))
		}
		for _, c := range x.chunks {
			if len(c) == 0 || len(c) > 2*rangeChunk {
				t.Fatalf("step %d: a chunk of %d", step, len(c))
			}
		}
		w := randomPrefix(r)
		var got, want []netip.Prefix
		x.within(w, func(q netip.Prefix) { got = append(got, q) })
		for q := range set {
			if q.Bits() > w.Bits() && w.Contains(q.Addr()) {
				want = append(want, q)
			}
		}
		slices.SortFunc(want, comparePrefixes)
		if !slices.Equal(got, want) {
			t.Fatalf("step %d: within %s gives %v, want %v", step, w, got, want)
		}
	}
	if len(x.chunks) < 3 {
		t.Errorf("the index never split (%d chunks): the test proves little", len(x.chunks))
	}
}

// The deadlines against a sort: keys come out soonest first, each once,
// only when due, after moves and removals.
func TestDeadlinesPopInOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	d := newDeadlines[int](0)
	want := map[int]time.Time{}
	for range 5000 {
		k := r.IntN(800)
		if r.IntN(4) == 0 {
			d.remove(k)
			delete(want, k)
			continue
		}
		at := start.Add(time.Duration(r.IntN(1000)) * time.Second)
		d.set(k, at)
		want[k] = at
	}
	if d.len() != len(want) {
		t.Fatalf("%d deadlines, want %d", d.len(), len(want))
	}
	now := start.Add(500 * time.Second)
	var popped []int
	d.popDue(now, func(k int) { popped = append(popped, k) })
	last := start
	for _, k := range popped {
		if want[k].After(now) || want[k].Before(last) {
			t.Fatalf("popped %d due at %s, after one due at %s (now %s)", k, want[k], last, now)
		}
		last = want[k]
		delete(want, k)
	}
	for k, at := range want {
		if !at.After(now) {
			t.Errorf("%d due at %s was not popped", k, at)
		}
	}
	if d.len() != len(want) {
		t.Errorf("%d deadlines left, want %d", d.len(), len(want))
	}
}
