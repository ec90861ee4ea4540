package state

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSaveLoadRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "state.json")
	s := New()
	s.Cursor = "1700000250"
	s.LastFullSync = time.Unix(1700000000, 0).UTC()
	until := time.Unix(1800000000, 0).UTC()
	s.Active.Set(netip.MustParsePrefix("192.0.2.1/32"), until)
	s.Active.Set(netip.MustParsePrefix("2001:db8::/48"), until.Add(time.Hour))
	if err := s.Save(path); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Cursor != s.Cursor || !got.LastFullSync.Equal(s.LastFullSync) || got.Active.Len() != 2 {
		t.Fatalf("round trip: got %+v, want %+v", got, s)
	}
	for p, u := range s.Active.All() {
		if !got.Active.Until(p).Equal(u) {
			t.Errorf("%s: until %v, want %v", p, got.Active.Until(p), u)
		}
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "*.tmp-*"))
	if len(leftovers) != 0 {
		t.Errorf("temporary files left behind: %v", leftovers)
	}
}

func TestLoadMissingIsErrNotExist(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "none.json"))
	if !errors.Is(err, ErrNotExist) {
		t.Fatalf("got %v, want ErrNotExist", err)
	}
}

func TestDecodeRejectsBadFiles(t *testing.T) {
	for name, tc := range map[string]struct{ data, want string }{
		"truncated":   {`{"version":1,"cursor":"1","act`, "parsing"},
		"old version": {`{"version":0}`, "version 0 is not supported"},
		"bad prefix":  {`{"version":1,"active":[{"p":"1.2.3.4/32","u":1},{"p":"nope","u":1}]}`, "active[1]"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Decode([]byte(tc.data))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want error containing %q", err, tc.want)
			}
		})
	}
}

func TestActiveAtAndPrune(t *testing.T) {
	now := time.Unix(1700000000, 0)
	s := New()
	live := netip.MustParsePrefix("192.0.2.1/32")
	ended := netip.MustParsePrefix("192.0.2.2/32")
	s.Active.Set(live, now.Add(time.Minute))
	s.Active.Set(ended, now)
	if !s.ActiveAt(live, now) || s.ActiveAt(ended, now) {
		t.Fatal("ActiveAt must be true only for decisions lasting past now")
	}
	s.Prune(now)
	if _, ok := s.Active.Get(ended); ok || s.Active.Len() != 1 {
		t.Fatalf("prune kept %v", s.Active)
	}
}

func TestSaveKeepsOldFileWhenDirectoryIsUnwritable(t *testing.T) {
	if os.Geteuid() == 0 {
		// root ignores directory permissions; use a path whose parent is a file.
		dir := t.TempDir()
		blocker := filepath.Join(dir, "file")
		if err := os.WriteFile(blocker, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := New().Save(filepath.Join(blocker, "state.json")); err == nil {
			t.Fatal("saving under a regular file must fail")
		}
		return
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	s := New()
	s.Cursor = "old"
	if err := s.Save(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(dir, 0o700)
	s.Cursor = "new"
	if err := s.Save(path); err == nil {
		t.Fatal("save into a read-only directory must fail")
	}
	got, err := Load(path)
	if err != nil || got.Cursor != "old" {
		t.Fatalf("old state must survive a failed save: %v %+v", err, got)
	}
}

func TestPushMarker(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	if on, err := PushInterrupted(path); err != nil || on {
		t.Fatalf("fresh: %v %v", on, err)
	}
	if err := BeginPush(path); err != nil {
		t.Fatal(err)
	}
	if on, err := PushInterrupted(path); err != nil || !on {
		t.Fatalf("after BeginPush: %v %v", on, err)
	}
	if err := EndPush(path); err != nil {
		t.Fatal(err)
	}
	if on, _ := PushInterrupted(path); on {
		t.Fatal("EndPush must clear the marker")
	}
	if err := EndPush(path); err != nil {
		t.Fatalf("EndPush twice: %v", err)
	}
}
