// Encoding of decisions into set elements, grouped per set.

package nftables

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/google/nftables"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bouncer"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/source"
)

// chunk bounds the elements per netlink message: a message's element list
// is one attribute, limited to 64 KiB. A batch holds as many messages as
// needed and is still one transaction.
const chunk = 800

// sortedKeys orders a batch's sets, so that batches are reproducible.
func sortedKeys[V any](m map[setKey]V) []setKey {
	keys := slices.Collect(maps.Keys(m))
	slices.SortFunc(keys, func(a, b setKey) int {
		if c := strings.Compare(a.origin, b.origin); c != 0 {
			return c
		}
		return slices.Index(kinds, a.kind) - slices.Index(kinds, b.kind)
	})
	return keys
}

// each queues the elements of one set in chunks. An interval's start and
// end always travel in the same chunk.
func each(s *nftables.Set, els []nftables.SetElement, op func(*nftables.Set, []nftables.SetElement) error) error {
	for len(els) > 0 {
		n := min(chunk, len(els))
		if n < len(els) && els[n].IntervalEnd {
			n++
		}
		if err := op(s, els[:n]); err != nil {
			return fmt.Errorf("set %s: %w", s.Name, err)
		}
		els = els[n:]
	}
	return nil
}

func kindOf(p netip.Prefix) setKind {
	return setKind{v6: p.Addr().Is6(), ranges: source.IsRange(p)}
}

// group encodes elems into one element list per set (timeouts only when
// adding). A full load is 100,000 elements: each list is allocated once at
// its size and every key is cut from one buffer, instead of a slice per
// element and lists grown by append.
func group(elems []bouncer.Element, timeouts bool) map[setKey][]nftables.SetElement {
	sizes, keyBytes := map[setKey]int{}, 0
	for _, e := range elems {
		n := width(e.Prefix)
		sizes[setKey{e.Origin, kindOf(e.Prefix)}] += n
		keyBytes += n * e.Prefix.Addr().BitLen() / 8
	}
	per := make(map[setKey][]nftables.SetElement, len(sizes))
	for k, n := range sizes {
		per[k] = make([]nftables.SetElement, 0, n)
	}
	keys := make([]byte, 0, keyBytes)
	for _, e := range elems {
		k := setKey{e.Origin, kindOf(e.Prefix)}
		timeout := e.Timeout
		if !timeouts {
			timeout = 0
		}
		per[k], keys = encode(per[k], keys, e.Prefix, timeout)
	}
	return per
}

// width is how many set elements p takes: 1, or 2 for a range (its end).
func width(p netip.Prefix) int {
	if source.IsRange(p) && lastAddr(p).Next().IsValid() {
		return 2
	}
	return 1
}

// encode appends p's elements to els, their keys to keys: a single
// address as one element, a range as the interval [first, last+1) — a
// start element carrying the timeout and an end element (the kernel
// refuses a timeout on an interval end). A range reaching the top of the
// address space has no end element.
func encode(els []nftables.SetElement, keys []byte, p netip.Prefix, timeout time.Duration) ([]nftables.SetElement, []byte) {
	var key []byte
	first := p.Masked().Addr()
	key, keys = cut(keys, first)
	els = append(els, nftables.SetElement{Key: key, Timeout: timeout})
	if !source.IsRange(p) {
		return els, keys
	}
	if end := lastAddr(p).Next(); end.IsValid() {
		key, keys = cut(keys, end)
		els = append(els, nftables.SetElement{Key: key, IntervalEnd: true})
	}
	return els, keys
}

// cut appends a's bytes to buf and returns them as a slice of their own
// (its capacity ends with it, so that later appends never write into it).
func cut(buf []byte, a netip.Addr) (key, rest []byte) {
	n := len(buf)
	if a.Is4() {
		b := a.As4()
		buf = append(buf, b[:]...)
	} else {
		b := a.As16()
		buf = append(buf, b[:]...)
	}
	return buf[n:len(buf):len(buf)], buf
}

// lastAddr is the highest address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().AsSlice()
	for i := range a {
		hostBits := len(a)*8 - p.Bits() - (len(a)-1-i)*8
		switch {
		case hostBits >= 8:
			a[i] = 0xff
		case hostBits > 0:
			a[i] |= byte(1<<hostBits - 1)
		}
	}
	last, _ := netip.AddrFromSlice(a)
	return last
}
