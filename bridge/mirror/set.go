package mirror

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bouncer"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/source/apiban"
	"github.com/crowdsecurity/crowdsec/pkg/models"
)

// CursorBase is added to a LAPI decision ID to make the cursor a client
// sees. APIBAN's clients start a pull at "100" (older ones at "0" or with
// no ID); every cursor at or below CursorBase means "from the start", and
// no real entry can hide below it.
const CursorBase = 1000

// PageSize is APIBAN's page, as the feed client reads it.
const PageSize = apiban.PageSize

// entry is one served address or range, ordered by id (its decision's).
// Its text is made when a page is answered: keeping 100,000 strings
// would cost more than formatting 250 per page.
type entry struct {
	id int64
	k  key
}

// key is a netip.Prefix without the pointer netip keeps for the address
// family: the set's maps and order hold 100,000 of them, and without
// pointers the garbage collector never scans them (docs/benchmarks.md,
// Mirror).
type key struct {
	addr [16]byte
	bits uint8
	is4  bool
}

func keyOf(p netip.Prefix) key {
	return key{addr: p.Addr().As16(), bits: uint8(p.Bits()), is4: p.Addr().Is4()}
}

// single says whether k is one address rather than a range.
func (k key) single() bool { return k.is4 && k.bits == 32 || !k.is4 && k.bits == 128 }

func (k key) prefix() netip.Prefix {
	a := netip.AddrFrom16(k.addr)
	if k.is4 {
		a = a.Unmap()
	}
	return netip.PrefixFrom(a, int(k.bits))
}

// Set is the served list: LAPI's active ban decisions that pass the
// filter, one entry per address or range, each ordered by the newest
// LAPI decision ID that bans it (a re-listed address moves to the end, as
// APIBAN re-lists it under a newer ID).
type Set struct {
	keep func(netip.Prefix) bool

	// ready is read without mu: a cached page is answered while a
	// rebuild holds mu (docs/benchmarks.md, Mirror).
	ready atomic.Bool

	mu         sync.RWMutex
	maxID      int64 // the highest decision ID seen since start
	byDecision map[int64]key
	// newest holds the newest decision ID banning each prefix; shared
	// all the decision IDs of the few prefixes two or more ban.
	newest  map[key]int64
	shared  map[key][]int64
	order   []entry // sorted by id; rebuilt after each Apply
	ranges  []entry // the entries wider than one address, for checks
	resyncs Resyncs
	// gen changes with every rebuild: a page answered for one
	// generation is the same bytes for every client until the next.
	gen atomic.Uint64
}

// Resyncs counts the full answers that replaced the set after the first
// (the periodic full pull), and the entries they added and removed.
type Resyncs struct {
	Count, Added, Removed int
}

// NewSet returns an empty set; keep says whether a prefix may be served
// (allowlists, never-ban set, the bouncer's minimum prefix: docs/sip.md,
// "What is served"); nil keeps everything.
func NewSet(keep func(netip.Prefix) bool) *Set {
	if keep == nil {
		keep = func(netip.Prefix) bool { return true }
	}
	s := &Set{keep: keep}
	s.clear(0)
	return s
}

// clear empties the set, its maps made for n decisions: grown one by one
// to 100,000, they would leave as much again of smaller tables behind,
// at the very moment LAPI's whole list is held decoded (the daemon's peak
// memory, docs/benchmarks.md).
func (s *Set) clear(n int) {
	s.byDecision, s.newest, s.shared = make(map[int64]key, n), make(map[key]int64, n), map[key][]int64{}
}

// Apply takes one answer of LAPI's decision stream: deleted decisions
// first, then new ones. The first call makes the set ready.
func (s *Set) Apply(resp *models.DecisionsStreamResponse) {
	s.mu.Lock()
	defer s.mu.Unlock()
	changed := !s.ready.Load()
	if resp != nil && len(resp.New) > 0 && len(s.byDecision) == 0 {
		s.clear(len(resp.New)) // LAPI's whole list, most likely
	}
	if resp != nil {
		for _, d := range resp.Deleted {
			if d != nil {
				changed = s.remove(d.ID) || changed
			}
		}
		for _, d := range resp.New {
			if p, ok := s.accept(d); ok {
				s.add(d.ID, p)
				changed = true
			}
		}
	}
	// Most stream answers are empty: the order is rebuilt only when
	// something changed.
	if changed {
		s.rebuild()
	}
	s.ready.Store(true) // once the first order is built
}

// Replace takes LAPI's whole active list (a stream's first answer) as
// the new set, as a restart would: entries LAPI no longer holds stop
// being served, the others keep their cursors (their decision IDs), and
// a cursor above every ID in the list starts from the beginning. It
// returns the entries added and removed; on a set not yet ready it is
// Apply and counts no resync.
func (s *Set) Replace(resp *models.DecisionsStreamResponse) (added, removed int) {
	if !s.Ready() { // one feeder: nothing makes it ready meanwhile
		s.Apply(resp)
		return 0, 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	before := s.newest
	n := 0
	if resp != nil {
		n = len(resp.New)
	}
	s.clear(n)
	s.maxID = 0
	if resp != nil {
		for _, d := range resp.New {
			if p, ok := s.accept(d); ok {
				s.add(d.ID, p)
			}
		}
	}
	for k := range s.newest {
		if _, ok := before[k]; !ok {
			added++
		}
	}
	for k := range before {
		if _, ok := s.newest[k]; !ok {
			removed++
		}
	}
	s.resyncs.Count++
	s.resyncs.Added += added
	s.resyncs.Removed += removed
	s.rebuild()
	return added, removed
}

// Resyncs returns the resync counts.
func (s *Set) Resyncs() Resyncs {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.resyncs
}

// accept returns the prefix a ban decision covers, or false for what is
// never served: other types and scopes, malformed values, filtered ones.
func (s *Set) accept(d *models.Decision) (netip.Prefix, bool) {
	if d == nil || d.Type == nil || d.Value == nil || d.Scope == nil || !strings.EqualFold(*d.Type, "ban") {
		return netip.Prefix{}, false
	}
	// The bouncer's reading of a decision, so that the mirror serves
	// exactly what the embedded bouncer would enforce.
	p, err := bouncer.ParseValue(*d.Scope, *d.Value)
	if err != nil {
		return p, false
	}
	return p, p.IsValid() && s.keep(p)
}

func (s *Set) add(id int64, p netip.Prefix) {
	s.remove(id) // a decision ID names one value; never count it twice
	k := keyOf(p)
	s.byDecision[id] = k
	s.maxID = max(s.maxID, id)
	newest, held := s.newest[k]
	if !held {
		s.newest[k] = id
		return
	}
	ids, ok := s.shared[k]
	if !ok {
		ids = []int64{newest}
	}
	s.shared[k] = append(ids, id)
	s.newest[k] = max(newest, id)
}

// remove drops decision id; false if it was not held.
func (s *Set) remove(id int64) bool {
	k, ok := s.byDecision[id]
	if !ok {
		return false
	}
	delete(s.byDecision, id)
	ids, shared := s.shared[k]
	if !shared {
		delete(s.newest, k)
		return true
	}
	ids = slices.DeleteFunc(ids, func(x int64) bool { return x == id })
	if len(ids) == 1 {
		delete(s.shared, k)
	} else {
		s.shared[k] = ids
	}
	s.newest[k] = slices.Max(ids)
	return true
}

// rebuild orders the entries by their newest decision ID.
func (s *Set) rebuild() {
	order := make([]entry, 0, len(s.newest))
	var ranges []entry
	for k, id := range s.newest {
		e := entry{id: id, k: k}
		order = append(order, e)
		if !k.single() {
			ranges = append(ranges, e)
		}
	}
	slices.SortFunc(order, func(a, b entry) int { return int(min(max(a.id-b.id, -1), 1)) })
	s.order, s.ranges = order, ranges
	s.gen.Add(1)
}

// Generation changes whenever what Page answers may have changed.
func (s *Set) Generation() uint64 { return s.gen.Load() }

// prefixText is how APIBAN lists an entry: a bare address, or CIDR for a
// range.
func prefixText(p netip.Prefix) string {
	if p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.String()
}

// Ready says whether LAPI's first answer has arrived.
func (s *Set) Ready() bool { return s.ready.Load() }

// Len is the number of served entries.
func (s *Set) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.order)
}

// Page returns up to n entries after the client's cursor (already parsed
// by ParseCursor) and the cursor of the last one. A cursor at or below
// CursorBase, or above every decision ID seen (from the future, or from
// before a LAPI reset), starts from the beginning.
func (s *Set) Page(cursor int64, n int) (texts []string, next string) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	after := cursor - CursorBase
	if after <= 0 || after > s.maxID {
		after = 0
	}
	i, _ := slices.BinarySearchFunc(s.order, after+1, func(e entry, id int64) int { return int(min(max(e.id-id, -1), 1)) })
	end := min(i+n, len(s.order))
	if i >= end {
		return nil, ""
	}
	texts = make([]string, 0, end-i)
	for _, e := range s.order[i:end] {
		texts = append(texts, prefixText(e.k.prefix()))
	}
	return texts, strconv.FormatInt(s.order[end-1].id+CursorBase, 10)
}

// Find returns the served cursor of the entry holding a, if any.
func (s *Set) Find(a netip.Addr) (string, bool) {
	a = a.Unmap()
	s.mu.RLock()
	defer s.mu.RUnlock()
	if id, ok := s.newest[keyOf(netip.PrefixFrom(a, a.BitLen()))]; ok {
		return strconv.FormatInt(id+CursorBase, 10), true
	}
	for _, e := range s.ranges {
		if e.k.prefix().Contains(a) {
			return strconv.FormatInt(e.id+CursorBase, 10), true
		}
	}
	return "", false
}

// All returns every served entry, oldest first.
func (s *Set) All() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, len(s.order))
	for i, e := range s.order {
		out[i] = prefixText(e.k.prefix())
	}
	return out
}

// ParseCursor reads a client's ID: "" is the start; anything but digits
// is refused; digits too large for an int64 are from the future, so the
// start too.
func ParseCursor(id string) (int64, bool) {
	if id == "" {
		return 0, true
	}
	if len(id) > 40 {
		return 0, false
	}
	for _, c := range id {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		return 0, true
	}
	return n, true
}
