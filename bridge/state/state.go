// Package state keeps what the bridge has already done: the feed cursor and
// every prefix it pushed with the time its decision ends. It is written
// atomically (temporary file, fsync, rename, fsync of the directory) so a
// crash at any point leaves either the old or the new file, never a mix.
package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// formatVersion is bumped when the file layout changes incompatibly.
const formatVersion = 1

// State is the bridge's memory between runs.
type State struct {
	// Cursor resumes the feed; "" starts from the beginning.
	Cursor string
	// LastFullSync is when a pull from the start of the feed last finished.
	LastFullSync time.Time
	// Active maps every prefix pushed to the end of its decision.
	Active map[netip.Prefix]time.Time
}

// New returns an empty state.
func New() *State {
	return &State{Active: make(map[netip.Prefix]time.Time)}
}

// ActiveAt reports whether p has a decision that lasts past t.
func (s *State) ActiveAt(p netip.Prefix, t time.Time) bool {
	until, ok := s.Active[p]
	return ok && until.After(t)
}

// Prune forgets decisions that ended before now.
func (s *State) Prune(now time.Time) {
	for p, until := range s.Active {
		if !until.After(now) {
			delete(s.Active, p)
		}
	}
}

// fileFormat is the JSON layout. Active is a list rather than a map so the
// file is sorted and diffable; times are unix seconds to keep it small.
type fileFormat struct {
	Version      int           `json:"version"`
	Cursor       string        `json:"cursor"`
	LastFullSync int64         `json:"last_full_sync,omitempty"`
	Active       []activeEntry `json:"active"`
}

type activeEntry struct {
	Prefix string `json:"p"`
	Until  int64  `json:"u"`
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

// Decode parses the state file format.
func Decode(data []byte) (*State, error) {
	var f fileFormat
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("parsing: %w", err)
	}
	if f.Version != formatVersion {
		return nil, fmt.Errorf("version %d is not supported (want %d)", f.Version, formatVersion)
	}
	s := New()
	s.Cursor = f.Cursor
	if f.LastFullSync != 0 {
		s.LastFullSync = time.Unix(f.LastFullSync, 0).UTC()
	}
	for i, e := range f.Active {
		p, err := netip.ParsePrefix(e.Prefix)
		if err != nil {
			return nil, fmt.Errorf("active[%d]: %w", i, err)
		}
		s.Active[p] = time.Unix(e.Until, 0).UTC()
	}
	return s, nil
}

// Encode renders s in the file format, sorted by prefix.
func (s *State) Encode() ([]byte, error) {
	f := fileFormat{Version: formatVersion, Cursor: s.Cursor, Active: make([]activeEntry, 0, len(s.Active))}
	if !s.LastFullSync.IsZero() {
		f.LastFullSync = s.LastFullSync.Unix()
	}
	for p, until := range s.Active {
		f.Active = append(f.Active, activeEntry{Prefix: p.String(), Until: until.Unix()})
	}
	sort.Slice(f.Active, func(i, j int) bool { return f.Active[i].Prefix < f.Active[j].Prefix })
	return json.Marshal(f)
}

// Save writes s to path atomically, creating the directory if needed.
func (s *State) Save(path string) error {
	data, err := s.Encode()
	if err != nil {
		return fmt.Errorf("encoding state: %w", err)
	}
	return WriteFileAtomic(path, data, 0o600)
}

// WriteFileAtomic replaces path with data so that readers, and a crash at
// any point, see either the old content or the new one.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("creating state directory: %w", err)
	}
	tmp, err := os.CreateTemp(dir, filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("creating temporary state file: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op once renamed
	if err := writeAndSync(tmp, data, perm); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("replacing state file: %w", err)
	}
	return syncDir(dir)
}

func writeAndSync(f *os.File, data []byte, perm os.FileMode) error {
	_, werr := f.Write(data)
	if werr == nil {
		werr = f.Chmod(perm)
	}
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return fmt.Errorf("writing temporary state file: %w", werr)
	}
	return nil
}

// syncDir makes the rename itself durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("opening state directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing state directory: %w", err)
	}
	return nil
}
