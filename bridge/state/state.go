// Package state keeps what the bridge has already done: the feed cursor and
// every prefix it pushed with the time its decision ends. It is written
// atomically (temporary file, fsync, rename, fsync of the directory) so a
// crash at any point leaves either the old or the new file, never a mix.
package state

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
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
	Active map[netip.Prefix]time.Time
	// Alerts maps the ID of every LAPI alert known to carry this
	// bridge's decisions to the end of its longest one: what the
	// per-sync check compares with LAPI (docs/reliability.md).
	Alerts map[int64]time.Time
	// LastRepair is when decisions LAPI had lost were last pushed
	// again, and LastRepaired how many.
	LastRepair   time.Time
	LastRepaired int

	// scratch is reused by every Save: a full sync saves after each push,
	// and fresh buffers each time (7 MB at 100,000 entries) were much of
	// the bridge's peak RSS. The file itself is written in chunks.
	scratch struct {
		chunk   []byte
		v4, tmp []entry4
	}
}

// New returns an empty state.
func New() *State {
	return &State{Active: make(map[netip.Prefix]time.Time), Alerts: make(map[int64]time.Time)}
}

// ActiveAt reports whether p has a decision that lasts past t.
func (s *State) ActiveAt(p netip.Prefix, t time.Time) bool {
	until, ok := s.Active[p]
	return ok && until.After(t)
}

// Prune forgets decisions, and alerts, that ended before now.
func (s *State) Prune(now time.Time) {
	for p, until := range s.Active {
		if !until.After(now) {
			delete(s.Active, p)
		}
	}
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
	for p, until := range s.Active {
		if until.After(limit) {
			s.Active[p] = limit
		}
	}
	for id, until := range s.Alerts {
		if until.After(limit) {
			s.Alerts[id] = limit
		}
	}
}

// ErrNotExist is returned by Load when there is no state file yet.
var ErrNotExist = errors.New("state file does not exist")

// Load reads the state file at path.
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
	return s, nil
}

// Save writes s to path atomically, creating the directory if needed.
func (s *State) Save(path string) error {
	return writeAtomic(path, 0o600, func(w io.Writer) error {
		var err error
		s.scratch.chunk, err = s.encode(s.scratch.chunk[:0], w)
		return err
	})
}
