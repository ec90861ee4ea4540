package state

// The snapshot codec: the state file's JSON, written by hand and read by a
// strict fast path with encoding/json behind it (docs/benchmarks.md).

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"time"
)

// formatVersion is bumped when the file layout changes incompatibly.
// Version 2 added the journal's generation: a build that knows only
// version 1 would ignore the journal, so it must refuse the file (and
// read LAPI back) rather than read it. Version 1 files still load.
const (
	formatVersion = 2
	oldVersion    = 1
)

func knownVersion(v int) bool { return v == formatVersion || v == oldVersion }

// fileFormat is the JSON layout. Active is a list rather than a map so the
// file is sorted and diffable; times are unix seconds to keep it small.
type fileFormat struct {
	Version      int           `json:"version"`
	Journal      uint64        `json:"journal,omitempty"`
	Cursor       string        `json:"cursor"`
	LastFullSync int64         `json:"last_full_sync,omitempty"`
	LastRepair   int64         `json:"last_repair,omitempty"`
	LastRepaired int           `json:"last_repaired,omitempty"`
	Alerts       []alertEntry  `json:"alerts,omitempty"`
	Active       []activeEntry `json:"active"`
}

type alertEntry struct {
	ID    int64 `json:"id"`
	Until int64 `json:"u"`
}

type activeEntry struct {
	Prefix string `json:"p"`
	Until  int64  `json:"u"`
}

// Decode parses the state file format.
func Decode(data []byte) (*State, error) {
	if s, ok := decodeFast(data); ok {
		return s, nil
	}
	return decodeJSON(data)
}

// decodeJSON is Decode through encoding/json.
func decodeJSON(data []byte) (*State, error) {
	var f fileFormat
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("parsing: %w", err)
	}
	if !knownVersion(f.Version) {
		return nil, fmt.Errorf("version %d is not supported (want %d)", f.Version, formatVersion)
	}
	s := New()
	if err := s.setHead(&f); err != nil {
		return nil, err
	}
	for i, e := range f.Active {
		p, err := netip.ParsePrefix(e.Prefix)
		if err != nil {
			return nil, fmt.Errorf("active[%d]: %w", i, err)
		}
		s.Active.setUnix(p, e.Until)
	}
	return s, nil
}

// setHead copies what precedes the active list.
func (s *State) setHead(f *fileFormat) error {
	s.Cursor = f.Cursor
	if f.Version == formatVersion {
		s.gen = f.Journal
	}
	if f.LastFullSync != 0 {
		s.LastFullSync = time.Unix(f.LastFullSync, 0).UTC()
	}
	if f.LastRepair != 0 {
		s.LastRepair = time.Unix(f.LastRepair, 0).UTC()
	}
	s.LastRepaired = f.LastRepaired
	for i, a := range f.Alerts {
		if a.ID <= 0 {
			return fmt.Errorf("alerts[%d]: ID %d is not an alert ID", i, a.ID)
		}
		s.Alerts[a.ID] = time.Unix(a.Until, 0).UTC()
	}
	return nil
}

// activeKey starts the list of entries in what Encode writes. Inside a
// JSON string a quote is escaped, so these bytes only occur as syntax.
var activeKey = []byte(`,"active":[`)

// decodeFast parses exactly what Encode writes, several times faster than
// encoding/json on 100,000 entries (docs/benchmarks.md). Anything else
// (a file edited by hand, reordered keys, spaces) returns false and goes
// through encoding/json, which also gives the error messages.
func decodeFast(data []byte) (*State, bool) {
	i := bytes.Index(data, activeKey)
	if i < 0 {
		return nil, false
	}
	var head fileFormat
	if json.Unmarshal(append(data[:i:i], '}'), &head) != nil || !knownVersion(head.Version) || head.Active != nil {
		return nil, false
	}
	rest := data[i+len(activeKey):]
	// One '{' per entry: counting a single byte is several times faster
	// than counting `{"p":"`, and gives the same size hint.
	s := &State{Active: NewActiveSet(bytes.Count(rest, []byte{'{'})), Alerts: make(map[int64]time.Time)}
	if s.setHead(&head) != nil {
		return nil, false
	}
	for len(rest) > 0 && rest[0] != ']' {
		var ok bool
		var pfx []byte
		if pfx, rest, ok = between(rest, `{"p":"`, '"'); !ok {
			return nil, false
		}
		var until []byte
		if until, rest, ok = between(rest, `,"u":`, '}'); !ok {
			return nil, false
		}
		p, ok := parsePrefix4(pfx)
		if !ok {
			var err error
			if p, err = netip.ParsePrefix(string(pfx)); err != nil {
				return nil, false
			}
		}
		u, ok := parseJSONInt(until)
		if !ok {
			return nil, false
		}
		s.Active.setUnix(p, u)
		switch {
		case len(rest) == 0:
			return nil, false
		case rest[0] == ',':
			rest = rest[1:]
			if len(rest) == 0 || rest[0] == ']' {
				return nil, false // a trailing comma is not JSON
			}
		case rest[0] != ']':
			return nil, false
		}
	}
	if string(rest) != "]}" {
		return nil, false
	}
	return s, true
}

// parsePrefix4 parses an IPv4 prefix written canonically ("a.b.c.d/n",
// no leading zeros), as netip.ParsePrefix would, without making a string
// of it. Anything else is left to netip.ParsePrefix.
func parsePrefix4(b []byte) (netip.Prefix, bool) {
	var a [4]byte
	for i := range a {
		field, n := b, 0
		for len(b) > 0 && b[0] >= '0' && b[0] <= '9' && len(field)-len(b) < 4 {
			n = n*10 + int(b[0]-'0')
			b = b[1:]
		}
		digits := len(field) - len(b)
		sep := byte('.')
		if i == 3 {
			sep = '/'
		}
		if digits == 0 || digits > 3 || (digits > 1 && field[0] == '0') || n > 255 || len(b) == 0 || b[0] != sep {
			return netip.Prefix{}, false
		}
		a[i], b = byte(n), b[1:]
	}
	if len(b) == 0 || len(b) > 2 || (len(b) == 2 && b[0] == '0') {
		return netip.Prefix{}, false
	}
	bits := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return netip.Prefix{}, false
		}
		bits = bits*10 + int(c-'0')
	}
	if bits > 32 {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(netip.AddrFrom4(a), bits), true
}

// parseJSONInt parses an integer as JSON writes it (no plus sign, no
// leading zero), of at most 18 digits so that it cannot overflow; the
// rest is left to encoding/json.
func parseJSONInt(b []byte) (int64, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 18 || (b[0] == '0' && len(b) > 1) {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

// between expects b to start with prefix and returns what follows it up to
// end, and what follows end.
func between(b []byte, prefix string, end byte) (field, rest []byte, ok bool) {
	if !bytes.HasPrefix(b, []byte(prefix)) {
		return nil, nil, false
	}
	b = b[len(prefix):]
	j := bytes.IndexByte(b, end)
	if j < 0 {
		return nil, nil, false
	}
	return b[:j], b[j+1:], true
}

// entry4 is an IPv4 entry of Encode.
type entry4 struct {
	key   uint64 // address << 8 | length: 40 bits
	until int64
}

// radixSort sorts v by key, one byte at a time from the lowest, skipping
// bytes all keys share (the length, mostly), with tmp (grown as needed)
// as the other buffer. It returns the sorted slice (v or tmp) and the
// other one.
func radixSort(v, tmp []entry4) (sorted, other []entry4) {
	if len(v) < 2 {
		return v, tmp
	}
	tmp = slices.Grow(tmp[:0], len(v))[:len(v)]
	for shift := 0; shift < 40; shift += 8 {
		var count [256]int
		for _, e := range v {
			count[byte(e.key>>shift)]++
		}
		if count[byte(v[0].key>>shift)] == len(v) {
			continue
		}
		pos := 0
		for d, c := range count {
			count[d] = pos
			pos += c
		}
		for _, e := range v {
			d := byte(e.key >> shift)
			tmp[count[d]] = e
			count[d]++
		}
		v, tmp = tmp, v
	}
	return v, tmp
}

// Encode renders s in the file format, sorted by prefix (address, then
// length). Like Save, it reuses buffers kept in s: neither may run
// concurrently with the other.
func (s *State) Encode() ([]byte, error) {
	return s.encode(nil, nil)
}

// encodeChunk is how much encode gathers before writing it to w.
const encodeChunk = 64 << 10

// encode renders the file into buf; with a writer w it writes it there
// in chunks of about encodeChunk bytes and returns buf, emptied, for
// reuse; without one it returns the whole file in buf.
func (s *State) encode(buf []byte, w io.Writer) ([]byte, error) {
	// Written by hand rather than with json.Marshal, sorted by address
	// rather than by string: with 100,000 entries reflection, string
	// sorting and one string per prefix were most of an incremental
	// sync's CPU time (docs/benchmarks.md). The output is what
	// json.Marshal(fileFormat) gives for the same order; a test checks.
	// The order is Prefix.Compare's (IPv4 first, then address, then
	// length); IPv4 entries sort on one integer key.
	type entry6 struct {
		p     netip.Prefix
		until int64
	}
	v4 := slices.Grow(s.scratch.v4[:0], len(s.Active.single)+len(s.Active.v4))
	for addr, until := range s.Active.single {
		v4 = append(v4, entry4{uint64(addr)<<8 | 32, int64(until)})
	}
	for k, until := range s.Active.v4 {
		v4 = append(v4, entry4{k, until})
	}
	v6 := make([]entry6, 0, len(s.Active.other))
	for p, until := range s.Active.other {
		v6 = append(v6, entry6{p, until})
	}
	v4, s.scratch.tmp = radixSort(v4, s.scratch.tmp)
	s.scratch.v4 = v4
	slices.SortFunc(v6, func(x, y entry6) int { return x.p.Compare(y.p) })
	cursor, err := json.Marshal(s.Cursor)
	if err != nil {
		return nil, err
	}
	// Prefixes are digits, hex, '.', ':' and '/': nothing to escape.
	if w == nil {
		buf = slices.Grow(buf, 64+len(cursor)+s.Active.Len()*36)
	} else {
		buf = slices.Grow(buf, encodeChunk+128)
	}
	var werr error
	flush := func(force bool) {
		if w != nil && werr == nil && (force || len(buf) >= encodeChunk) {
			_, werr = w.Write(buf)
			buf = buf[:0]
		}
	}
	buf = append(buf, `{"version":`...)
	buf = strconv.AppendInt(buf, formatVersion, 10)
	if s.gen != 0 {
		buf = append(buf, `,"journal":`...)
		buf = strconv.AppendUint(buf, s.gen, 10)
	}
	buf = append(buf, `,"cursor":`...)
	buf = append(buf, cursor...)
	if !s.LastFullSync.IsZero() {
		buf = append(buf, `,"last_full_sync":`...)
		buf = strconv.AppendInt(buf, s.LastFullSync.Unix(), 10)
	}
	buf = s.appendRepairAndAlerts(buf)
	buf = append(buf, `,"active":[`...)
	first := true
	entry := func(p netip.Prefix, until int64) {
		if !first {
			buf = append(buf, ',')
		}
		first = false
		buf = append(buf, `{"p":"`...)
		buf = p.AppendTo(buf)
		buf = append(buf, `","u":`...)
		buf = strconv.AppendInt(buf, until, 10)
		buf = append(buf, '}')
		flush(false)
	}
	for _, e := range v4 {
		entry(prefix4(e.key), e.until)
	}
	for _, e := range v6 {
		entry(e.p, e.until)
	}
	buf = append(buf, "]}"...)
	flush(true)
	return buf, werr
}

// appendRepairAndAlerts writes the fields between last_full_sync and
// active, as json.Marshal(fileFormat) would, alerts sorted by ID.
func (s *State) appendRepairAndAlerts(buf []byte) []byte {
	if !s.LastRepair.IsZero() {
		buf = append(buf, `,"last_repair":`...)
		buf = strconv.AppendInt(buf, s.LastRepair.Unix(), 10)
	}
	if s.LastRepaired != 0 {
		buf = append(buf, `,"last_repaired":`...)
		buf = strconv.AppendInt(buf, int64(s.LastRepaired), 10)
	}
	if len(s.Alerts) == 0 {
		return buf
	}
	ids := make([]int64, 0, len(s.Alerts))
	for id := range s.Alerts {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	buf = append(buf, `,"alerts":[`...)
	for i, id := range ids {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, `{"id":`...)
		buf = strconv.AppendInt(buf, id, 10)
		buf = append(buf, `,"u":`...)
		buf = strconv.AppendInt(buf, s.Alerts[id].Unix(), 10)
		buf = append(buf, '}')
	}
	return append(buf, ']')
}
