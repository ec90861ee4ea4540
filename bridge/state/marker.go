package state

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"
)

// A push to LAPI is not idempotent and its answer can be lost (a crash, a
// cut connection). A marker file written before each push and removed once
// the state file records it tells the next run that LAPI may hold decisions
// the state does not know about, so it must read them back before pushing.

func markerPath(statePath string) string { return statePath + ".pushing" }

// BeginPush records that a push is about to start.
func BeginPush(statePath string) error {
	stamp := []byte(time.Now().UTC().Format(time.RFC3339) + "\n")
	if err := WriteFileAtomic(markerPath(statePath), stamp, 0o600); err != nil {
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
