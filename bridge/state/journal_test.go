package state

import (
	"bytes"
	"fmt"
	"hash/crc32"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var t0 = time.Unix(1_800_000_000, 0).UTC()

func pfx(i int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{45, 0, byte(i >> 8), byte(i)}), 32)
}

// journaled saves a snapshot of 2 entries, then appends three records:
// 3 new prefixes and an alert each, the last one refreshing pfx(0).
// It returns the path and the state each record left.
func journaled(t *testing.T) (string, []*State) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state.json")
	s := New()
	s.Cursor = "0"
	s.Active.Set(pfx(0), t0)
	s.Active.Set(pfx(1), t0)
	if err := s.Save(path); err != nil {
		t.Fatal(err)
	}
	var after []*State
	for r := 1; r <= 3; r++ {
		for i := range 3 {
			s.Add(pfx(10*r+i), t0.Add(time.Duration(r)*time.Hour))
		}
		if r == 3 {
			s.Add(pfx(0), t0.Add(9*time.Hour))
			s.Add(netip.MustParsePrefix("2001:db8::/48"), t0.Add(time.Minute))
		}
		s.AddAlert(int64(r), t0.Add(time.Duration(r)*time.Hour))
		s.Cursor = strings.Repeat("c", r)
		s.LastRepair, s.LastRepaired = t0.Add(time.Duration(r)*time.Second), r
		if err := s.Append(path); err != nil {
			t.Fatal(err)
		}
		after = append(after, clone(s))
	}
	return path, after
}

func clone(s *State) *State {
	c := New()
	c.Cursor, c.LastFullSync, c.LastRepair, c.LastRepaired = s.Cursor, s.LastFullSync, s.LastRepair, s.LastRepaired
	c.Active, c.Alerts = s.Active.Clone(), maps.Clone(s.Alerts)
	return c
}

func assertSame(t *testing.T, got, want *State) {
	t.Helper()
	if got.Cursor != want.Cursor || !got.LastFullSync.Equal(want.LastFullSync) ||
		!got.LastRepair.Equal(want.LastRepair) || got.LastRepaired != want.LastRepaired {
		t.Fatalf("scalars: got %q %v %v %d, want %q %v %v %d", got.Cursor, got.LastFullSync, got.LastRepair, got.LastRepaired,
			want.Cursor, want.LastFullSync, want.LastRepair, want.LastRepaired)
	}
	if !got.Active.Equal(&want.Active) {
		t.Fatalf("active: got %v\nwant %v", got.Active, want.Active)
	}
	if !maps.EqualFunc(got.Alerts, want.Alerts, time.Time.Equal) {
		t.Fatalf("alerts: got %v, want %v", got.Alerts, want.Alerts)
	}
}

// Records replay in order: a later one overwrites an earlier end and the
// scalar fields are the last record's.
func TestJournalReplaysInOrder(t *testing.T) {
	path, after := journaled(t)
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	assertSame(t, got, after[2])
	if !got.Active.Until(pfx(0)).Equal(t0.Add(9 * time.Hour)) {
		t.Fatalf("pfx(0) ends %v: the last record's end must win", got.Active.Until(pfx(0)))
	}
	if got.JournalDamaged() {
		t.Fatal("a whole journal is not damaged")
	}
}

// A crash in the middle of an append leaves a torn last record: cut the
// journal at every byte of it, and Load must give exactly the state
// before it, say the journal was damaged, and never misread it.
func TestJournalTornLastRecordIsDropped(t *testing.T) {
	path, after := journaled(t)
	whole, err := os.ReadFile(JournalPath(path))
	if err != nil {
		t.Fatal(err)
	}
	ends := recordEnds(t, whole)
	for cut := ends[1] + 1; cut < ends[2]; cut++ {
		if err := os.WriteFile(JournalPath(path), whole[:cut], 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := Load(path)
		if err != nil {
			t.Fatalf("cut at %d: %v", cut, err)
		}
		assertSame(t, got, after[1])
		if !got.JournalDamaged() {
			t.Fatalf("cut at %d: damage not reported", cut)
		}
	}
}

// recordEnds lists the offset after each record.
func recordEnds(t *testing.T, data []byte) []int {
	var ends []int
	for off := 0; off < len(data); {
		n := int(uint32(data[off]) | uint32(data[off+1])<<8 | uint32(data[off+2])<<16 | uint32(data[off+3])<<24)
		off += recordHeader + n
		ends = append(ends, off)
	}
	if len(ends) != 3 || ends[2] != len(data) {
		t.Fatalf("record ends %v in %d bytes", ends, len(data))
	}
	return ends
}

// A flipped bit in a record (its length, checksum or payload) ends the
// journal there; the next append writes over the damaged tail, so what
// follows is read again.
func TestJournalBadChecksumEndsItAndAppendWritesOver(t *testing.T) {
	path, after := journaled(t)
	whole, err := os.ReadFile(JournalPath(path))
	if err != nil {
		t.Fatal(err)
	}
	ends := recordEnds(t, whole)
	for _, at := range []int{ends[0] + 1, ends[0] + 5, ends[0] + 12, ends[1] - 1} {
		bad := bytes.Clone(whole)
		bad[at] ^= 0x10
		if err := os.WriteFile(JournalPath(path), bad, 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := Load(path)
		if err != nil {
			t.Fatal(err)
		}
		assertSame(t, got, after[0])
		if !got.JournalDamaged() {
			t.Fatalf("flip at %d: damage not reported", at)
		}
	}
	// Append after the damaged load: the record lands after record 1.
	s, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	s.Add(pfx(99), t0)
	s.Cursor = "after"
	if err := s.Append(path); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	want := clone(after[0])
	want.Active.Set(pfx(99), t0)
	want.Cursor = "after"
	assertSame(t, got, want)
	if got.JournalDamaged() {
		t.Fatal("the damaged tail must be gone after an append")
	}
}

// Compact folds the journal into a snapshot only once the journal has
// outgrown its share; Save leaves no journal, and records of an older
// snapshot (a journal left behind by a crash during Save) are ignored.
func TestJournalCompaction(t *testing.T) {
	path, _ := journaled(t)
	s, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if did, err := s.Compact(path); err != nil || did {
		t.Fatalf("a journal of 3 small records must not be compacted: %v %v", did, err)
	}
	stale, err := os.ReadFile(JournalPath(path))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; s.disk.journalValid < compactMin; i++ {
		s.Add(pfx(1000+i), t0)
		if err := s.Append(path); err != nil {
			t.Fatal(err)
		}
	}
	want := clone(s)
	if did, err := s.Compact(path); err != nil || !did {
		t.Fatalf("a journal past %d bytes and 1/%d of the snapshot must be compacted: %v %v", compactMin, compactRatio, did, err)
	}
	if _, err := os.Stat(JournalPath(path)); !os.IsNotExist(err) {
		t.Fatalf("journal left after compaction: %v", err)
	}
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	assertSame(t, got, want)

	// The old journal comes back (its removal was lost): ignored.
	if err := os.WriteFile(JournalPath(path), stale, 0o600); err != nil {
		t.Fatal(err)
	}
	got, err = Load(path)
	if err != nil {
		t.Fatal(err)
	}
	assertSame(t, got, want)
	if got.JournalDamaged() {
		t.Fatal("a stale journal is not damage")
	}
	// And the next append writes over it.
	got.Add(pfx(7), t0)
	if err := got.Append(path); err != nil {
		t.Fatal(err)
	}
	want.Active.Set(pfx(7), t0)
	again, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	assertSame(t, again, want)
}

// Files of older layouts load: version 1 (before the journal) and 2
// (before the singles). The first write after one is a whole snapshot,
// never a record no generation could claim; Compact makes it at once.
func TestOlderFilesLoadAndAreRewritten(t *testing.T) {
	for _, old := range []string{
		`{"version":1,"cursor":"7","alerts":[{"id":3,"u":1800000000}],"active":[{"p":"45.0.0.1/32","u":1800000000}]}`,
		`{"version":2,"journal":9,"cursor":"7","alerts":[{"id":3,"u":1800000000}],"active":[{"p":"45.0.0.1/32","u":1800000000}]}`,
	} {
		for _, write := range []string{"Append", "Compact"} {
			path := filepath.Join(t.TempDir(), "state.json")
			if err := os.WriteFile(path, []byte(old), 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := Load(path)
			if err != nil || s.Cursor != "7" || s.Active.Len() != 1 || len(s.Alerts) != 1 {
				t.Fatalf("%.12s: %v %+v", old, err, s)
			}
			s.Add(pfx(2), t0)
			if write == "Append" {
				err = s.Append(path)
			} else if done, cerr := s.Compact(path); !done {
				err = fmt.Errorf("Compact did not rewrite the file (%v)", cerr)
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(JournalPath(path)); !os.IsNotExist(err) {
				t.Fatalf("%.12s %s: the first write must be a snapshot: %v", old, write, err)
			}
			data, _ := os.ReadFile(path)
			if !bytes.HasPrefix(data, []byte(`{"version":3,"journal":`)) {
				t.Fatalf("%.12s %s: rewritten as %.60s", old, write, data)
			}
			got, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			assertSame(t, got, s)
		}
	}
}

// A snapshot written over a journal (flush resets the state with
// New().Save) must not let the old records come back.
func TestSaveOfNewStateDropsTheJournal(t *testing.T) {
	path, _ := journaled(t)
	journal, _ := os.ReadFile(JournalPath(path))
	if err := New().Save(path); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(JournalPath(path), journal, 0o600) // as if its removal was lost
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Active.Len() != 0 || got.Cursor != "" {
		t.Fatalf("the reset state took old records: %q %v", got.Cursor, got.Active)
	}
}

// Garbage that happens to pass the length check must fail the checksum;
// a record with a good checksum but a bad body must not be half-applied.
func TestJournalRecordWithGoodChecksumAndBadBodyIsRefused(t *testing.T) {
	s := New()
	s.gen = 42
	rec := s.appendRecord(nil, []change{{prefix: pfx(1), until: 5}}, nil)
	good := clone(s)
	// Break the prefix's family byte and fix the checksum up.
	payload := rec[recordHeader:]
	payload[len(payload)-7] = 5
	bad := (&State{gen: 42}).appendRecordRaw(payload)
	if valid, damaged := s.replay(bad); valid != 0 || !damaged {
		t.Fatalf("replay of a bad body: valid %d damaged %v", valid, damaged)
	}
	assertSame(t, s, good)
}

// appendRecordRaw frames payload as a record, checksum included.
func (s *State) appendRecordRaw(payload []byte) []byte {
	out := make([]byte, recordHeader, recordHeader+len(payload))
	out[0], out[1], out[2], out[3] = byte(len(payload)), byte(len(payload)>>8), byte(len(payload)>>16), byte(len(payload)>>24)
	c := crc32.Checksum(payload, castagnoli)
	out[4], out[5], out[6], out[7] = byte(c), byte(c>>8), byte(c>>16), byte(c>>24)
	return append(out, payload...)
}
