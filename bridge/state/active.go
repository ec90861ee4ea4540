package state

import (
	"encoding/binary"
	"fmt"
	"iter"
	"math"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"
)

// ActiveSet maps prefixes to the end of their decision, kept as unix
// seconds (all the state file keeps of it). A single IPv4 address with
// an end from 1970 to 2106 (nearly all of the feed) is one uint64,
// address << 32 | end: those of the last snapshot sit in a sorted slice
// read straight from the file, so loading a state costs no hashing
// (docs/benchmarks.md), and those set since in a map beside it. Another
// IPv4 prefix is one uint64 key (address << 8 | length); other prefixes
// (IPv6, rare in the feed) go in a map of their own. The zero value is
// an empty set. A copy shares its storage with the original: pass a
// pointer, or Clone.
type ActiveSet struct {
	// base is sorted by address; an end of 0 marks an entry deleted
	// since (ends are never 0: that is 1970), and baseLive counts the
	// others.
	base     []uint64
	baseLive int
	single   map[uint32]uint32
	v4       map[uint64]int64
	other    map[netip.Prefix]int64
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

// fitsSingle reports whether an end fits the packed form of a single
// address: a uint32, and not 0, which marks a deleted base entry.
func fitsSingle(u int64) bool { return u > 0 && u <= math.MaxUint32 }

// packed is a base entry; an end of 0 marks it deleted.
func packed(addr, until uint32) uint64 { return uint64(addr)<<32 | uint64(until) }

// live reports whether base entry e is not deleted.
func live(e uint64) bool { return uint32(e) != 0 }

// singlePrefix is the prefix of a single address.
func singlePrefix(addr uint32) netip.Prefix { return prefix4(uint64(addr)<<8 | 32) }

// findBase returns the index of addr in base, or -1.
func (a *ActiveSet) findBase(addr uint32) int {
	lo := uint64(addr) << 32
	i := sort.Search(len(a.base), func(i int) bool { return a.base[i] >= lo })
	if i < len(a.base) && uint32(a.base[i]>>32) == addr {
		return i
	}
	return -1
}

// Len is the number of prefixes in the set.
func (a *ActiveSet) Len() int { return a.baseLive + len(a.single) + len(a.v4) + len(a.other) }

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
		if i := a.findBase(addr); i >= 0 && live(a.base[i]) {
			return int64(uint32(a.base[i])), true
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
	addr, single := single32(k)
	if single && fitsSingle(until) {
		if i := a.findBase(addr); i >= 0 {
			if !live(a.base[i]) {
				a.baseLive++
			}
			a.base[i] = packed(addr, uint32(until))
		} else {
			if a.single == nil {
				a.single = make(map[uint32]uint32)
			}
			a.single[addr] = uint32(until)
		}
		if len(a.v4) > 0 {
			delete(a.v4, k) // it may have had an end that did not fit
		}
		return
	}
	if single {
		a.deleteSingle(addr)
	}
	if a.v4 == nil {
		a.v4 = make(map[uint64]int64)
	}
	a.v4[k] = until
}

// deleteSingle forgets the packed form of a single address.
func (a *ActiveSet) deleteSingle(addr uint32) {
	delete(a.single, addr)
	if i := a.findBase(addr); i >= 0 && live(a.base[i]) {
		a.base[i] = packed(addr, 0)
		a.baseLive--
	}
}

// Delete forgets p.
func (a *ActiveSet) Delete(p netip.Prefix) {
	k, is4 := key4(p)
	if !is4 {
		delete(a.other, p)
		return
	}
	if addr, ok := single32(k); ok {
		a.deleteSingle(addr)
	}
	delete(a.v4, k)
}

// All yields every prefix and the end of its decision, in no order.
// The loop may Delete the prefix it was given.
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
		for _, e := range a.base {
			if live(e) && !yield(singlePrefix(uint32(e>>32)), int64(uint32(e))) {
				return
			}
		}
		for addr, u := range a.single {
			if !yield(singlePrefix(addr), int64(u)) {
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
	c := ActiveSet{base: slices.Clone(a.base), baseLive: a.baseLive}
	for addr, u := range a.single {
		c.setUnix(singlePrefix(addr), int64(u))
	}
	for k, u := range a.v4 {
		c.setUnix(prefix4(k), u)
	}
	for p, u := range a.other {
		c.setUnix(p, u)
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
	for i, e := range a.base {
		if live(e) && del(int64(uint32(e))) {
			a.base[i] = packed(uint32(e>>32), 0)
			a.baseLive--
		}
	}
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
	for i, e := range a.base {
		if !live(e) || int64(uint32(e)) <= limit {
			continue
		}
		if fitsSingle(limit) {
			a.base[i] = packed(uint32(e>>32), uint32(limit))
		} else {
			a.setUnix(singlePrefix(uint32(e>>32)), limit)
		}
	}
	for addr, u := range a.single {
		if int64(u) > limit {
			a.setUnix(singlePrefix(addr), limit)
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

// singles returns every packed single address, sorted: the base's live
// entries merged with the map's. It shares nothing with a.
func (a *ActiveSet) singles() []uint64 {
	added := make([]uint64, 0, len(a.single))
	for addr, u := range a.single {
		added = append(added, packed(addr, u))
	}
	slices.Sort(added)
	out := make([]uint64, 0, a.baseLive+len(added))
	i := 0
	for _, e := range a.base {
		if !live(e) {
			continue
		}
		for i < len(added) && added[i] < e {
			out = append(out, added[i])
			i++
		}
		out = append(out, e)
	}
	return append(out, added[i:]...)
}

// setBase makes sorted (from singles, or a file) all of a's packed
// single addresses. It refuses entries out of order, repeated, or with
// an end of 0, and then leaves a as it was.
func (a *ActiveSet) setBase(sorted []uint64) error {
	for i, e := range sorted {
		if !live(e) {
			return fmt.Errorf("entry %d (%s) has no end", i, singlePrefix(uint32(e>>32)))
		}
		if i > 0 && e>>32 <= sorted[i-1]>>32 {
			return fmt.Errorf("entry %d (%s) is out of order", i, singlePrefix(uint32(e>>32)))
		}
	}
	a.adoptBase(sorted)
	return nil
}

// adoptBase is setBase for what singles returned, which needs no check.
func (a *ActiveSet) adoptBase(sorted []uint64) {
	a.base, a.baseLive, a.single = sorted, len(sorted), nil
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
