package bouncer

import (
	"cmp"
	"net/netip"
	"slices"
	"sort"
)

// rangeChunk is the size a chunk of a rangeIndex is split back to.
const rangeChunk = 128

// rangeIndex holds prefixes in address order, so that the ones inside a
// wider prefix are found without visiting the others. It is a list of
// sorted chunks (at most 2*rangeChunk each): an insert or a delete moves
// one chunk, not the whole list.
type rangeIndex struct {
	chunks [][]netip.Prefix
}

// comparePrefixes orders by address (IPv4 first), then the wider first:
// the prefixes inside p follow p.
func comparePrefixes(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return cmp.Compare(a.Bits(), b.Bits())
}

// find returns the chunk p belongs in and its position there.
func (x *rangeIndex) find(p netip.Prefix) (ci, i int, found bool) {
	ci = sort.Search(len(x.chunks), func(j int) bool {
		c := x.chunks[j]
		return comparePrefixes(c[len(c)-1], p) >= 0
	})
	if ci == len(x.chunks) {
		ci-- // after every prefix: the end of the last chunk
	}
	i, found = slices.BinarySearchFunc(x.chunks[ci], p, comparePrefixes)
	return ci, i, found
}

func (x *rangeIndex) insert(p netip.Prefix) {
	if len(x.chunks) == 0 {
		x.chunks = [][]netip.Prefix{{p}}
		return
	}
	ci, i, found := x.find(p)
	if found {
		return
	}
	c := slices.Insert(x.chunks[ci], i, p)
	if len(c) <= 2*rangeChunk {
		x.chunks[ci] = c
		return
	}
	tail := slices.Clone(c[rangeChunk:])
	x.chunks[ci] = slices.Clip(c[:rangeChunk])
	x.chunks = slices.Insert(x.chunks, ci+1, tail)
}

func (x *rangeIndex) delete(p netip.Prefix) {
	if len(x.chunks) == 0 {
		return
	}
	ci, i, found := x.find(p)
	if !found {
		return
	}
	x.chunks[ci] = slices.Delete(x.chunks[ci], i, i+1)
	if len(x.chunks[ci]) == 0 {
		x.chunks = slices.Delete(x.chunks, ci, ci+1)
	}
}

// within calls fn with each prefix strictly inside w.
func (x *rangeIndex) within(w netip.Prefix, fn func(netip.Prefix)) {
	if len(x.chunks) == 0 {
		return
	}
	ci, i, _ := x.find(w)
	for ; ci < len(x.chunks); ci, i = ci+1, 0 {
		for _, q := range x.chunks[ci][i:] {
			if !w.Contains(q.Addr()) {
				return
			}
			if q.Bits() > w.Bits() {
				fn(q)
			}
		}
	}
}

func (x *rangeIndex) reset() { x.chunks = nil }
