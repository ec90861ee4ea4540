package state

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// A push to LAPI is not idempotent and its answer can be lost (a crash, a
// cut connection). A marker file written before each push and removed once
// the state file records it tells the next run that LAPI may hold decisions
// the state does not know about, so it must read them back before pushing.

func markerPath(statePath string) string { return statePath + ".pushing" }

// BeginPush records that a push is about to start. Only the file's
// existence counts (the time in it is for a reader), so it needs no
// atomic replacement: creating it and making its name durable is enough,
// and costs a fraction of an atomic write on every push of a full sync.
func BeginPush(statePath string) error {
	stamp := []byte(time.Now().UTC().Format(time.RFC3339) + "\n")
	path := markerPath(statePath)
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return fmt.Errorf("marking push: creating state directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("marking push: %w", err)
	}
	_, werr := f.Write(stamp)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return fmt.Errorf("marking push: %w", werr)
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("marking push: %w", err)
	}
	return nil
}

// EndPush records that the state file now reflects the last push.
func EndPush(statePath string) error {
	err := os.Remove(markerPath(statePath))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("clearing push marker: %w", err)
	}
	return nil
}

// PushInterrupted reports whether a push began and was never recorded.
func PushInterrupted(statePath string) (bool, error) {
	_, err := os.Stat(markerPath(statePath))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	default:
		return false, fmt.Errorf("checking push marker: %w", err)
	}
}
