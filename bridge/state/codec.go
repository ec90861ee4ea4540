package state

// The snapshot codec: the state file is JSON whose bulk, the single IPv4
// addresses, is one base64 string of fixed-size records, so that a load
// is a decode and a copy rather than a parse per entry (docs/benchmarks.md).

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"slices"
	"time"
)

// formatVersion is bumped when the file layout changes incompatibly.
// Version 2 added the journal's generation, version 3 the singles: a
// build that knows only an older version would ignore the new field, so
// it must refuse the file (and read LAPI back) rather than read it.
// Files of versions 1 and 2 still load, and are rewritten.
const formatVersion = 3

func knownVersion(v int) bool { return v >= 1 && v <= formatVersion }

// fileFormat is the JSON layout; times are unix seconds to keep it small.
// Singles holds the single IPv4 addresses whose end fits a uint32 (nearly
// all), as 8 bytes each (the address, then the end, big-endian), sorted by
// address; Active holds every other prefix, sorted.
type fileFormat struct {
	Version      int           `json:"version"`
	Journal      uint64        `json:"journal,omitempty"`
	Cursor       string        `json:"cursor"`
	LastFullSync int64         `json:"last_full_sync,omitempty"`
	LastRepair   int64         `json:"last_repair,omitempty"`
	LastRepaired int           `json:"last_repaired,omitempty"`
	Alerts       []alertEntry  `json:"alerts,omitempty"`
	Active       []activeEntry `json:"active"`
	Singles      []byte        `json:"singles"`
}

type alertEntry struct {
	ID    int64 `json:"id"`
	Until int64 `json:"u"`
}

type activeEntry struct {
	Prefix string `json:"p"`
	Until  int64  `json:"u"`
}

// singlesKey starts the last field of what Encode writes. Inside a JSON
// string a quote is escaped, so these bytes only occur as syntax.
var singlesKey = []byte(`,"singles":"`)

// Decode parses the state file format.
func Decode(data []byte) (*State, error) {
	var f fileFormat
	singles, ok := decodeFast(data, &f)
	if !ok {
		f = fileFormat{}
		if err := json.Unmarshal(data, &f); err != nil {
			return nil, fmt.Errorf("parsing: %w", err)
		}
		var err error
		if singles, err = unpack(f.Singles); err != nil {
			return nil, err
		}
	}
	return fromFile(&f, singles)
}

// unpack reads the singles' bytes as entries.
func unpack(b []byte) ([]uint64, error) {
	if len(b)%8 != 0 {
		return nil, fmt.Errorf("singles: %d bytes is not a whole number of 8-byte entries", len(b))
	}
	out := make([]uint64, len(b)/8)
	for i := range out {
		out[i] = binary.BigEndian.Uint64(b[8*i:])
	}
	return out, nil
}

// fromFile checks f and its singles and builds the state they describe.
func fromFile(f *fileFormat, singles []uint64) (*State, error) {
	if !knownVersion(f.Version) {
		return nil, fmt.Errorf("version %d is not supported (want %d)", f.Version, formatVersion)
	}
	s := New()
	if err := s.setHead(f); err != nil {
		return nil, err
	}
	if err := s.Active.setBase(singles); err != nil {
		return nil, fmt.Errorf("singles: %w", err)
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

// decodeFast reads what Encode writes without running encoding/json's
// scanner over the singles: the fields before them are parsed as JSON,
// the string itself as base64, a chunk at a time, straight into entries.
// Anything else (a file edited by hand, reordered keys, spaces, line
// breaks, which base64 would skip and JSON refuses) returns false and
// goes through encoding/json, which also gives the error messages.
func decodeFast(data []byte, f *fileFormat) ([]uint64, bool) {
	i := bytes.Index(data, singlesKey)
	if i < 0 || !bytes.HasSuffix(data, []byte(`"}`)) || i+len(singlesKey) > len(data)-2 {
		return nil, false
	}
	if json.Unmarshal(append(data[:i:i], '}'), f) != nil || f.Singles != nil {
		return nil, false
	}
	text := data[i+len(singlesKey) : len(data)-2]
	if bytes.ContainsAny(text, "\r\n") {
		return nil, false
	}
	out := make([]uint64, 0, base64.StdEncoding.DecodedLen(len(text))/8)
	raw := make([]byte, singlesChunk)
	for len(text) > 0 {
		chunk := text[:min(len(text), base64.StdEncoding.EncodedLen(singlesChunk))]
		text = text[len(chunk):]
		n, err := base64.StdEncoding.Decode(raw, chunk)
		if err != nil || n%8 != 0 {
			return nil, false
		}
		for j := 0; j < n; j += 8 {
			out = append(out, binary.BigEndian.Uint64(raw[j:]))
		}
	}
	return out, true
}

// setHead copies the fields other than the prefixes.
func (s *State) setHead(f *fileFormat) error {
	s.Cursor = f.Cursor
	if f.Version >= 2 {
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
	// A file of an older layout is rewritten by the next write.
	s.disk.needSnapshot = f.Version != formatVersion || s.gen == 0
	return nil
}

// Encode renders s in the file format.
func (s *State) Encode() ([]byte, error) {
	var b bytes.Buffer
	_, err := s.encode(&b)
	return b.Bytes(), err
}

// singlesChunk is how many bytes of singles encode gathers before it
// writes their base64: a multiple of 3, so no chunk but the last pads.
const singlesChunk = 3 * 8 << 10

// encode writes the file to w, the singles in chunks, and returns them
// (sorted) for the caller to keep.
func (s *State) encode(w io.Writer) ([]uint64, error) {
	singles := s.Active.singles()
	head, err := json.Marshal(s.head())
	if err != nil {
		return nil, err
	}
	head, ok := bytes.CutSuffix(head, []byte(`,"singles":null}`))
	if !ok {
		return nil, fmt.Errorf("encoding state: the singles are not the last field")
	}
	if _, err := w.Write(append(head, singlesKey...)); err != nil {
		return nil, err
	}
	raw := make([]byte, 0, singlesChunk)
	text := make([]byte, base64.StdEncoding.EncodedLen(singlesChunk))
	for i, e := range singles {
		raw = binary.BigEndian.AppendUint64(raw, e)
		if len(raw) == singlesChunk || i == len(singles)-1 {
			base64.StdEncoding.Encode(text, raw)
			if _, err := w.Write(text[:base64.StdEncoding.EncodedLen(len(raw))]); err != nil {
				return nil, err
			}
			raw = raw[:0]
		}
	}
	_, err = w.Write([]byte(`"}`))
	return singles, err
}

// head is the file's layout without the singles (null, as encode expects),
// every list sorted so that the file is diffable.
func (s *State) head() fileFormat {
	f := fileFormat{
		Version:      formatVersion,
		Journal:      s.gen,
		Cursor:       s.Cursor,
		LastFullSync: unixOrZero(s.LastFullSync),
		LastRepair:   unixOrZero(s.LastRepair),
		LastRepaired: s.LastRepaired,
		Active:       []activeEntry{},
	}
	for _, id := range slices.Sorted(maps.Keys(s.Alerts)) {
		f.Alerts = append(f.Alerts, alertEntry{ID: id, Until: s.Alerts[id].Unix()})
	}
	var rest []netip.Prefix
	for k := range s.Active.v4 {
		rest = append(rest, prefix4(k))
	}
	for p := range s.Active.other {
		rest = append(rest, p)
	}
	slices.SortFunc(rest, netip.Prefix.Compare)
	for _, p := range rest {
		u, _ := s.Active.getUnix(p)
		f.Active = append(f.Active, activeEntry{Prefix: p.String(), Until: u})
	}
	return f
}
