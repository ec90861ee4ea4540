// Package state keeps what the bridge has already done: the feed cursor and
// every prefix it pushed with the time its decision ends. It lives in a
// snapshot (the state file, written atomically: codec.go, atomic.go) and
// a journal beside it (journal.go) to which each push appends a record,
// so that recording a push costs what it added; the journal is folded
// into a new snapshot now and then. marker.go is the push marker and
// lock.go the one-writer lock. The why is in docs/reliability.md.
package state

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/netip"
	"os"
	"time"
)

// State is the bridge's memory between runs.
type State struct {
	// Cursor resumes the feed; "" starts from the beginning.
	Cursor string
	// LastFullSync is when a pull from the start of the feed last finished.
	LastFullSync time.Time
	// Active maps every prefix pushed to the end of its decision.
	Active ActiveSet
	// Alerts maps the ID of every LAPI alert known to carry this
	// bridge's decisions to the end of its longest one: what the
	// per-sync check compares with LAPI (docs/reliability.md).
	Alerts map[int64]time.Time
	// LastRepair is when decisions LAPI had lost were last pushed
	// again, and LastRepaired how many.
	LastRepair   time.Time
	LastRepaired int

	// gen is the generation of the snapshot on disk: the journal's
	// records carry it, and records of another one are ignored.
	gen uint64
	// disk is what the files hold, as far as this State knows.
	disk struct {
		snapshotSize int64
		// journalValid is the length of the journal's valid records,
		// journalSize the file's (-1: unknown); they differ when a
		// damaged or stale tail is to be written over.
		journalValid, journalSize int64
		// damaged: Load cut the journal at a damaged record.
		damaged bool
		// needSnapshot: the next write must be a whole snapshot (none
		// was written yet, or the last one failed half-way).
		needSnapshot bool
	}
	// pending is what Add and AddAlert changed since the last write.
	pending struct {
		prefixes, alerts []change
		record           []byte
	}
}

// New returns an empty state.
func New() *State {
	s := &State{Alerts: make(map[int64]time.Time)}
	s.disk.needSnapshot = true
	return s
}

// Add records that a decision for p now ends at until; Append writes it.
func (s *State) Add(p netip.Prefix, until time.Time) {
	s.Active.Set(p, until)
	s.pending.prefixes = append(s.pending.prefixes, change{prefix: p, until: until.Unix()})
}

// AddAlert records that alert id carries decisions ending by until.
func (s *State) AddAlert(id int64, until time.Time) {
	s.Alerts[id] = until
	s.pending.alerts = append(s.pending.alerts, change{id: id, until: until.Unix()})
}

// JournalDamaged reports whether Load found a damaged record in the
// journal (a crash in the middle of an append): what it recorded, and
// anything after it, was dropped.
func (s *State) JournalDamaged() bool { return s.disk.damaged }

// ActiveAt reports whether p has a decision that lasts past t.
func (s *State) ActiveAt(p netip.Prefix, t time.Time) bool {
	until, ok := s.Active.getUnix(p)
	return ok && until > t.Unix()
}

// Prune forgets decisions, and alerts, that ended before now.
func (s *State) Prune(now time.Time) {
	s.Active.deleteFunc(func(until int64) bool { return until <= now.Unix() })
	for id, until := range s.Alerts {
		if !until.After(now) {
			delete(s.Alerts, id)
		}
	}
}

// Clamp believes no end time later than limit: the file may have been
// written by someone else, and an entry "active until 2100" would keep an
// address from ever being pushed again.
func (s *State) Clamp(limit time.Time) {
	s.Active.clamp(limit.Unix())
	for id, until := range s.Alerts {
		if until.After(limit) {
			s.Alerts[id] = limit
		}
	}
}

// ErrNotExist is returned by Load when there is no state file yet.
var ErrNotExist = errors.New("state file does not exist")

// Load reads the state file at path and replays its journal onto it.
// It writes nothing: a reader (status, check) sees what the last writer
// recorded, and a damaged journal tail is reported by JournalDamaged.
func Load(path string) (*State, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", path, ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("reading state: %w", err)
	}
	s, err := Decode(data)
	if err != nil {
		return nil, fmt.Errorf("state file %s: %w", path, err)
	}
	s.disk.snapshotSize = int64(len(data))
	if s.gen != 0 {
		if err := s.readJournal(path); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Save writes all of s as a new snapshot at path, atomically, creating
// the directory if needed, and starts an empty journal.
func (s *State) Save(path string) error {
	old := s.gen
	s.gen = newGeneration(old)
	var size int64
	var singles []uint64
	err := writeAtomic(path, 0o600, func(w io.Writer) error {
		bw := bufio.NewWriterSize(w, 64<<10)
		cw := &countingWriter{w: bw}
		var err error
		if singles, err = s.encode(cw); err == nil {
			err = bw.Flush()
		}
		size = cw.n
		return err
	})
	if err != nil {
		// The file holds the old snapshot, or (if only the directory's
		// fsync failed) maybe the new one: only a whole one is safe next.
		s.gen, s.disk.needSnapshot = old, true
		return err
	}
	// What the file holds, sorted, is what the next Load would read:
	// keeping it as the base empties the map of addresses added since.
	s.Active.adoptBase(singles)
	s.disk.snapshotSize, s.disk.needSnapshot, s.disk.damaged = size, false, false
	s.pending.prefixes, s.pending.alerts = s.pending.prefixes[:0], s.pending.alerts[:0]
	// The old journal's records carry the old generation and are
	// ignored from now on; removing it only saves reading it.
	s.disk.journalValid, s.disk.journalSize = 0, 0
	if err := os.Remove(JournalPath(path)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.disk.journalSize = -1
	}
	return nil
}

// Append records what changed since the last write (the scalar fields,
// and what Add and AddAlert added) as one journal record: its cost
// follows the change, not the size of s. It writes a snapshot instead
// when one is needed.
func (s *State) Append(path string) error {
	if s.disk.needSnapshot {
		return s.Save(path)
	}
	s.pending.record = s.appendRecord(s.pending.record[:0], s.pending.prefixes, s.pending.alerts)
	if err := s.appendJournal(path, s.pending.record); err != nil {
		return err
	}
	s.pending.prefixes, s.pending.alerts = s.pending.prefixes[:0], s.pending.alerts[:0]
	return nil
}

// compactMin and compactRatio: a journal is folded into a new snapshot
// once it passes both compactMin bytes and 1/compactRatio of the
// snapshot's size. Each snapshot then pays for at least that many bytes
// of records, so the cost of all writes stays linear in what is added,
// and Load never replays more than a fraction of what it decodes.
const (
	compactMin   = 64 << 10
	compactRatio = 8
)

// Compact writes a new snapshot when the journal has grown past its
// share, or the file is of an older layout, and reports whether it did.
func (s *State) Compact(path string) (bool, error) {
	j := s.disk.journalValid
	if !s.disk.needSnapshot && (j < compactMin || j*compactRatio < s.disk.snapshotSize) {
		return false, nil
	}
	return true, s.Save(path)
}

// newGeneration draws a random generation, never 0 nor old, below 2^53
// so that any JSON reader keeps it exact.
func newGeneration(old uint64) uint64 {
	for {
		g := rand.Uint64N(1<<53-1) + 1
		if g != old {
			return g
		}
	}
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
