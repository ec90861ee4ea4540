package state

// The journal: an append-only record of pushes beside the snapshot
// (STATE_FILE.journal), so that recording a push costs what the push
// added, not what the bridge knows (docs/reliability.md, section 2).
//
// A record is [length uint32][CRC-32C uint32][payload], little-endian.
// The payload holds the generation of the snapshot it extends, the
// scalar fields as they stand after the push (cursor, last full sync,
// last repair), and the alerts and prefixes the push added, each with
// its end. Records only add or overwrite: what ends is pruned at load,
// and a replacement (a read-back from LAPI) writes a new snapshot.
//
// Each snapshot carries a fresh random generation; records of another
// generation are left over from before it and are ignored. A record
// whose length or checksum does not hold (a crash in the middle of an
// append) ends the journal: it and anything after it are dropped, never
// read, and the next append writes over them.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"time"
)

// JournalPath is the journal beside the state file at statePath.
func JournalPath(statePath string) string { return statePath + ".journal" }

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

const (
	recordHeader = 8
	// maxRecord bounds a record's claimed length: a push of 1,000
	// prefixes is about 11 KB, and a damaged length must not make the
	// reader allocate gigabytes.
	maxRecord = 64 << 20
)

var errBadRecord = errors.New("bad journal record")

// change is one prefix or alert a push added.
type change struct {
	prefix netip.Prefix
	id     int64
	until  int64
}

// appendRecord encodes one record of s's scalar fields and the changes.
func (s *State) appendRecord(buf []byte, prefixes, alerts []change) []byte {
	start := len(buf)
	buf = append(buf, make([]byte, recordHeader)...)
	buf = binary.LittleEndian.AppendUint64(buf, s.gen)
	buf = binary.AppendUvarint(buf, uint64(len(s.Cursor)))
	buf = append(buf, s.Cursor...)
	buf = binary.AppendVarint(buf, unixOrZero(s.LastFullSync))
	buf = binary.AppendVarint(buf, unixOrZero(s.LastRepair))
	buf = binary.AppendVarint(buf, int64(s.LastRepaired))
	buf = binary.AppendUvarint(buf, uint64(len(alerts)))
	for _, a := range alerts {
		buf = binary.AppendVarint(buf, a.id)
		buf = binary.AppendVarint(buf, a.until)
	}
	buf = binary.AppendUvarint(buf, uint64(len(prefixes)))
	for _, c := range prefixes {
		a := c.prefix.Addr()
		if a.Is4() {
			b := a.As4()
			buf = append(buf, 4)
			buf = append(buf, b[:]...)
		} else {
			b := a.As16()
			buf = append(buf, 6)
			buf = append(buf, b[:]...)
		}
		buf = append(buf, byte(c.prefix.Bits()))
		buf = binary.AppendVarint(buf, c.until)
	}
	payload := buf[start+recordHeader:]
	binary.LittleEndian.PutUint32(buf[start:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(buf[start+4:], crc32.Checksum(payload, castagnoli))
	return buf
}

func unixOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

func timeOrZero(u int64) time.Time {
	if u == 0 {
		return time.Time{}
	}
	return time.Unix(u, 0).UTC()
}

// replay applies the records of data that extend s's generation, in
// order, and returns how many bytes they take. damaged says a record
// failed its length, checksum or decoding: the journal was cut there.
func (s *State) replay(data []byte) (valid int, damaged bool) {
	for valid < len(data) {
		rest := data[valid:]
		if len(rest) < recordHeader {
			return valid, true
		}
		n := binary.LittleEndian.Uint32(rest)
		if n > maxRecord || uint64(n) > uint64(len(rest)-recordHeader) {
			return valid, true
		}
		payload := rest[recordHeader : recordHeader+int(n)]
		if crc32.Checksum(payload, castagnoli) != binary.LittleEndian.Uint32(rest[4:]) {
			return valid, true
		}
		if len(payload) < 8 || binary.LittleEndian.Uint64(payload) != s.gen {
			return valid, false // left over from before the snapshot
		}
		if err := s.apply(payload[8:]); err != nil {
			return valid, true
		}
		valid += recordHeader + int(n)
	}
	return valid, false
}

// apply decodes one record's payload (after the generation) into s. It
// checks everything before changing anything, so a bad record leaves s
// as it was.
func (s *State) apply(p []byte) error {
	r := reader{b: p}
	cursor := string(r.bytes(r.uvarint()))
	full, repair, repaired := r.varint(), r.varint(), r.varint()
	alerts := make([]change, r.count(2))
	for i := range alerts {
		alerts[i] = change{id: r.varint(), until: r.varint()}
		if alerts[i].id <= 0 {
			r.err = errBadRecord
		}
	}
	prefixes := make([]change, r.count(7))
	for i := range prefixes {
		prefixes[i].prefix = r.prefix()
		prefixes[i].until = r.varint()
	}
	if r.err != nil || len(r.b) != 0 {
		return errBadRecord
	}
	s.Cursor = cursor
	s.LastFullSync, s.LastRepair, s.LastRepaired = timeOrZero(full), timeOrZero(repair), int(repaired)
	for _, a := range alerts {
		s.Alerts[a.id] = time.Unix(a.until, 0).UTC()
	}
	for _, c := range prefixes {
		s.Active.setUnix(c.prefix, c.until)
	}
	return nil
}

// reader takes a record apart; the first error sticks and every read
// after it gives zero.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail() { r.b, r.err = nil, errBadRecord }

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

// count reads a length whose items take at least min bytes each, so a
// bad count cannot make a huge allocation.
func (r *reader) count(min int) int {
	n := r.uvarint()
	if n > uint64(len(r.b)/min) {
		r.fail()
		return 0
	}
	return int(n)
}

func (r *reader) bytes(n uint64) []byte {
	if n > uint64(len(r.b)) {
		r.fail()
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) prefix() netip.Prefix {
	kind := r.bytes(1)
	if r.err != nil {
		return netip.Prefix{}
	}
	var a netip.Addr
	switch kind[0] {
	case 4:
		a = netip.AddrFrom4([4]byte(r.bytes(4)))
	case 6:
		a = netip.AddrFrom16([16]byte(r.bytes(16)))
	default:
		r.fail()
		return netip.Prefix{}
	}
	bits := r.bytes(1)
	if r.err != nil {
		return netip.Prefix{}
	}
	p := netip.PrefixFrom(a, int(bits[0]))
	if !p.IsValid() {
		r.fail()
	}
	return p
}

// readJournal replays the journal beside path into s.
func (s *State) readJournal(path string) error {
	data, err := os.ReadFile(JournalPath(path))
	if errors.Is(err, fs.ErrNotExist) {
		s.disk.journalValid, s.disk.journalSize = 0, 0
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading state journal: %w", err)
	}
	valid, damaged := s.replay(data)
	s.disk.journalValid, s.disk.damaged = int64(valid), damaged
	s.disk.journalSize = int64(len(data))
	return nil
}

// appendJournal writes rec after the journal's valid records (over a
// damaged or stale tail, if any) and makes it durable.
func (s *State) appendJournal(path string, rec []byte) error {
	jpath := JournalPath(path)
	f, err := os.OpenFile(jpath, os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("opening state journal: %w", err)
	}
	werr := s.writeRecord(f, rec)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		// What is on disk past the valid records is unknown now.
		s.disk.journalSize = -1
		return fmt.Errorf("appending to state journal: %w", werr)
	}
	if s.disk.journalValid == 0 {
		// A new file: its name must be as durable as its content.
		if err := syncDir(filepath.Dir(jpath)); err != nil {
			return err
		}
	}
	s.disk.journalValid += int64(len(rec))
	s.disk.journalSize = s.disk.journalValid
	return nil
}

func (s *State) writeRecord(f *os.File, rec []byte) error {
	if s.disk.journalSize != s.disk.journalValid {
		if err := f.Truncate(s.disk.journalValid); err != nil {
			return err
		}
	}
	if _, err := f.WriteAt(rec, s.disk.journalValid); err != nil {
		return err
	}
	return f.Sync()
}
