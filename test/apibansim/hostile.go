package apibansim

import (
	"net/http"
	"net/netip"
)

// DefaultOverlongEntries is one entry more than a page holds: the
// smallest over-long page.
const DefaultOverlongEntries = DefaultPageSize + 1

// hostile counts the hostile pages served; the Sim's mutex guards it.
type hostile struct {
	pages  int // every hostile page, for HostileEntries
	cycles int // FaultCursorCycle pages
	backs  int // FaultCursorBack pages
}

// HostileEntries is what the k-th hostile page served (from 0) lists when
// it holds n entries: 2001:db8:bad:K::1 to ::N, documentation addresses
// that no test feeds otherwise.
func HostileEntries(k, n int) []string {
	out := make([]string, n)
	for i := range n {
		v := uint32(i + 1)
		out[i] = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0x0b, 0xad, byte(k >> 8), byte(k),
			12: byte(v >> 24), 13: byte(v >> 16), 14: byte(v >> 8), 15: byte(v)}).String()
	}
	return out
}

// writeHostile answers with the next page of hostile kind f.
func (s *Sim) writeHostile(w http.ResponseWriter, f Fault) {
	s.mu.Lock()
	k := s.hostile.pages
	s.hostile.pages++
	n, id := s.pageSize, int64(0)
	switch f {
	case FaultCursorCycle:
		id = 1000 * int64(1+s.hostile.cycles%2)
		s.hostile.cycles++
	case FaultCursorBack:
		id = max(3000-1000*int64(s.hostile.backs), 1)
		s.hostile.backs++
	case FaultOverlong:
		n, id = s.overlong, s.list.nextID+1_000_000
	}
	s.mu.Unlock()
	writePage(w, HostileEntries(k, n), id)
}
