package cache

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
)

func TestDir(t *testing.T) {
	t.Setenv("CACHE_TEST_DIR", "/somewhere")
	if d, err := Dir("CACHE_TEST_DIR", "x"); err != nil || d != "/somewhere" {
		t.Errorf("with the variable: %q, %v", d, err)
	}
	t.Setenv("CACHE_TEST_DIR", "")
	t.Setenv("XDG_CACHE_HOME", "/cachehome")
	if d, err := Dir("CACHE_TEST_DIR", "x"); err != nil || d != "/cachehome/crowdsec-apiban-bridge/x" {
		t.Errorf("without: %q, %v", d, err)
	}
}

// TestFillOnce: eight fillers at once, one fill; a failed fill is
// reported and leaves the cache to fill again.
func TestFillOnce(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "c")
	done := filepath.Join(dir, "done")
	ready := func() bool { _, err := os.Stat(done); return err == nil }
	if err := Fill(dir, ready, func() error { return errors.New("offline") }); err == nil || err.Error() != "offline" {
		t.Fatalf("failed fill: %v", err)
	}
	var fills atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			err := Fill(dir, ready, func() error {
				fills.Add(1)
				return os.WriteFile(done, nil, 0o644)
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := fills.Load(); n != 1 {
		t.Errorf("%d fills, want 1", n)
	}
}
