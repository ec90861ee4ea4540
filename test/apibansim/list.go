package apibansim

import (
	"cmp"
	"slices"
	"strconv"
)

// Sets of the v2 API. v1 serves SetSIP only.
const (
	SetSIP  = "sip"
	SetHTTP = "http"
	// SetAll is the union of the other sets; entries are never in it.
	SetAll = "all"
)

// entry is one listed address. value is kept verbatim so tests can list
// invalid strings, IPv6 or CIDR prefixes.
type entry struct {
	id    int64
	value string
	set   string
}

// list holds entries in strictly increasing ID order, as APIBAN hands
// them out oldest first. The Sim's mutex guards it.
type list struct {
	entries []entry
	nextID  int64
}

func newList(startID int64) *list { return &list{nextID: startID} }

// add appends value under a fresh ID. An entry already listed in the set
// is moved to the new ID: that is how a re-listed address shows up again
// after a client's cursor.
func (l *list) add(set, value string) { l.addAll(set, []string{value}) }

// addAll is add for each of values in turn, in one pass over the list:
// a benchmark lists a million addresses, which one pass each would take
// hours to.
func (l *list) addAll(set string, values []string) {
	last := make(map[string]int, len(values)) // where each value is added last
	for i, v := range values {
		last[v] = i
	}
	l.entries = slices.DeleteFunc(l.entries, func(e entry) bool {
		_, again := last[e.value]
		return again && e.set == set
	})
	for i, v := range values {
		if last[v] == i { // an earlier add of it would be moved to this one
			l.entries = append(l.entries, entry{id: l.nextID, value: v, set: set})
		}
		l.nextID++
	}
}

// remove drops value from every set and says how many entries went.
func (l *list) remove(value string) int {
	before := len(l.entries)
	l.entries = slices.DeleteFunc(l.entries, func(e entry) bool { return e.value == value })
	return before - len(l.entries)
}

// expire drops the n oldest entries, like APIBAN's 7-day expiry would.
func (l *list) expire(n int) int {
	n = min(max(n, 0), len(l.entries))
	l.entries = slices.Delete(l.entries, 0, n)
	return n
}

// after returns up to limit entries of set with an ID above cursor,
// oldest first, and the ID of the newest one returned.
func (l *list) after(set string, cursor int64, limit int) ([]string, int64) {
	var out []string
	var last int64
	// IDs increase along the list: skip what the cursor covers at once.
	start, found := slices.BinarySearchFunc(l.entries, cursor, func(e entry, id int64) int { return cmp.Compare(e.id, id) })
	if found {
		start++
	}
	for _, e := range l.entries[start:] {
		if !inSet(e, set) {
			continue
		}
		if len(out) == limit {
			break
		}
		out = append(out, e.value)
		last = e.id
	}
	return out, last
}

// find returns the ID of value in set, if listed.
func (l *list) find(set, value string) (int64, bool) {
	for _, e := range l.entries {
		if e.value == value && inSet(e, set) {
			return e.id, true
		}
	}
	return 0, false
}

func inSet(e entry, set string) bool { return set == SetAll || e.set == set }

func validSet(set string) bool { return set == SetSIP || set == SetHTTP || set == SetAll }

// parseCursor reads a request's ID. "", "0" and "100" are the start
// forms clients use; any number below the first ID behaves the same.
func parseCursor(id string) (int64, bool) {
	if id == "" {
		return 0, true
	}
	n, err := strconv.ParseInt(id, 10, 64)
	return n, err == nil && n >= 0
}

// Add lists ips in the sip set, each under a new ID.
func (s *Sim) Add(ips ...string) { s.AddSet(SetSIP, ips...) }

// AddSet lists ips in set (SetSIP or SetHTTP), each under a new ID.
func (s *Sim) AddSet(set string, ips ...string) {
	if set != SetSIP && set != SetHTTP {
		panic("apibansim: AddSet: set must be sip or http, got " + strconv.Quote(set))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.list.addAll(set, ips)
}

// Remove unlists ips from every set and returns how many entries went.
func (s *Sim) Remove(ips ...string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, ip := range ips {
		n += s.list.remove(ip)
	}
	return n
}

// Expire unlists the n oldest entries and returns how many went.
func (s *Sim) Expire(n int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.list.expire(n)
}

// Len is the number of listed entries over all sets.
func (s *Sim) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.list.entries)
}

// LastID is the ID of the newest entry, "" when the list is empty.
func (s *Sim) LastID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.list.entries) == 0 {
		return ""
	}
	return strconv.FormatInt(s.list.entries[len(s.list.entries)-1].id, 10)
}
