package state

import (
	"encoding/binary"
	"fmt"
	"iter"
	"math"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// ActiveSet maps prefixes to the end of their decision, in about a sixth
// of the memory of a map[netip.Prefix]time.Time: at a million entries
// that map was most of a full sync's peak RSS (docs/benchmarks.md). An
// end is kept as unix seconds, which is all the state file keeps of it
// anyway. A single IPv4 address (nearly all of the feed) is a uint32 key
// with a uint32 end (8 bytes a slot; ends outside 1970 to 2106 go with
// the next kind); another IPv4 prefix is one uint64 key (address << 8 |
// length); other prefixes (IPv6, rare in the feed) go in a map of their
// own. The zero value is an empty set.
type ActiveSet struct {
	single map[uint32]uint32
	v4     map[uint64]int64
	other  map[netip.Prefix]int64
}

// NewActiveSet returns an empty set with room for n single IPv4 addresses.
func NewActiveSet(n int) ActiveSet {
	return ActiveSet{single: make(map[uint32]uint32, n)}
}

// key4 gives p's IPv4 key, or false for any other prefix.
func key4(p netip.Prefix) (uint64, bool) {
	a := p.Addr()
	if !a.Is4() || !p.IsValid() {
		return 0, false
	}
	b := a.As4()
	return uint64(binary.BigEndian.Uint32(b[:]))<<8 | uint64(p.Bits()), true
}

// prefix4 is key4's inverse.
func prefix4(k uint64) netip.Prefix {
	var a [4]byte
	binary.BigEndian.PutUint32(a[:], uint32(k>>8))
	return netip.PrefixFrom(netip.AddrFrom4(a), int(k&0xff))
}

// single32 reports whether k is a single address, and its address.
func single32(k uint64) (uint32, bool) { return uint32(k >> 8), k&0xff == 32 }

// fits32 reports whether an end fits a uint32.
func fits32(u int64) bool { return u >= 0 && u <= math.MaxUint32 }

// Len is the number of prefixes in the set.
func (a *ActiveSet) Len() int { return len(a.single) + len(a.v4) + len(a.other) }

// Get returns the end of p's decision, to the second.
func (a *ActiveSet) Get(p netip.Prefix) (time.Time, bool) {
	u, ok := a.getUnix(p)
	if !ok {
		return time.Time{}, false
	}
	return time.Unix(u, 0).UTC(), true
}

func (a *ActiveSet) getUnix(p netip.Prefix) (int64, bool) {
	k, is4 := key4(p)
	if !is4 {
		u, ok := a.other[p]
		return u, ok
	}
	if addr, ok := single32(k); ok {
		if u, ok := a.single[addr]; ok {
			return int64(u), true
		}
	}
	u, ok := a.v4[k]
	return u, ok
}

// Set records that p's decision ends at until (kept to the second).
func (a *ActiveSet) Set(p netip.Prefix, until time.Time) { a.setUnix(p, until.Unix()) }

func (a *ActiveSet) setUnix(p netip.Prefix, until int64) {
	k, is4 := key4(p)
	if !is4 {
		if a.other == nil {
			a.other = make(map[netip.Prefix]int64)
		}
		a.other[p] = until
		return
	}
	if addr, ok := single32(k); ok && fits32(until) {
		if a.single == nil {
			a.single = make(map[uint32]uint32)
		}
		a.single[addr] = uint32(until)
		if len(a.v4) > 0 {
			delete(a.v4, k) // it may have had an end that did not fit
		}
		return
	}
	if addr, ok := single32(k); ok {
		delete(a.single, addr)
	}
	if a.v4 == nil {
		a.v4 = make(map[uint64]int64)
	}
	a.v4[k] = until
}

// Delete forgets p.
func (a *ActiveSet) Delete(p netip.Prefix) {
	k, is4 := key4(p)
	if !is4 {
		delete(a.other, p)
		return
	}
	if addr, ok := single32(k); ok {
		delete(a.single, addr)
	}
	delete(a.v4, k)
}

// All yields every prefix and the end of its decision, in no order.
// The loop may Delete or Set the prefix it was given.
func (a *ActiveSet) All() iter.Seq2[netip.Prefix, time.Time] {
	return func(yield func(netip.Prefix, time.Time) bool) {
		for p, u := range a.allUnix() {
			if !yield(p, time.Unix(u, 0).UTC()) {
				return
			}
		}
	}
}

func (a *ActiveSet) allUnix() iter.Seq2[netip.Prefix, int64] {
	return func(yield func(netip.Prefix, int64) bool) {
		for addr, u := range a.single {
			if !yield(prefix4(uint64(addr)<<8|32), int64(u)) {
				return
			}
		}
		for k, u := range a.v4 {
			if !yield(prefix4(k), u) {
				return
			}
		}
		for p, u := range a.other {
			if !yield(p, u) {
				return
			}
		}
	}
}

// Clone returns a copy of a that shares nothing with it.
func (a *ActiveSet) Clone() ActiveSet {
	c := ActiveSet{single: make(map[uint32]uint32, len(a.single)), v4: make(map[uint64]int64, len(a.v4)), other: make(map[netip.Prefix]int64, len(a.other))}
	for addr, u := range a.single {
		c.single[addr] = u
	}
	for k, u := range a.v4 {
		c.v4[k] = u
	}
	for p, u := range a.other {
		c.other[p] = u
	}
	return c
}

// Equal reports whether a and b hold the same prefixes with the same ends.
func (a *ActiveSet) Equal(b *ActiveSet) bool {
	if a.Len() != b.Len() {
		return false
	}
	for p, u := range a.allUnix() {
		if v, ok := b.getUnix(p); !ok || v != u {
			return false
		}
	}
	return true
}

// deleteFunc forgets every prefix whose end del returns true for.
func (a *ActiveSet) deleteFunc(del func(until int64) bool) {
	for addr, u := range a.single {
		if del(int64(u)) {
			delete(a.single, addr)
		}
	}
	for k, u := range a.v4 {
		if del(u) {
			delete(a.v4, k)
		}
	}
	for p, u := range a.other {
		if del(u) {
			delete(a.other, p)
		}
	}
}

// clamp moves every end later than limit to limit.
func (a *ActiveSet) clamp(limit int64) {
	for addr, u := range a.single {
		if int64(u) > limit {
			a.setUnix(prefix4(uint64(addr)<<8|32), limit)
		}
	}
	for k, u := range a.v4 {
		if u > limit {
			a.v4[k] = limit
		}
	}
	for p, u := range a.other {
		if u > limit {
			a.other[p] = limit
		}
	}
}

// Until is Get without the flag: the zero time when p is not in the set.
func (a *ActiveSet) Until(p netip.Prefix) time.Time {
	t, _ := a.Get(p)
	return t
}

// String lists the set, sorted, for test failures and debugging.
func (a ActiveSet) String() string {
	ps := slices.SortedFunc(func(yield func(netip.Prefix) bool) {
		for p := range a.allUnix() {
			if !yield(p) {
				return
			}
		}
	}, netip.Prefix.Compare)
	var b strings.Builder
	b.WriteByte('{')
	for i, p := range ps {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s:%s", p, a.Until(p).Format(time.RFC3339))
	}
	b.WriteByte('}')
	return b.String()
}
