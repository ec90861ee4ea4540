// Package cache keeps what the tests build or download once per machine
// (crowdsec binaries, Debian packages) under the user cache directory, and
// lets concurrent test binaries share the work.
package cache

import (
	"os"
	"path/filepath"
	"syscall"
)

// Dir is $env when set, else ~/.cache/crowdsec-apiban-bridge/name.
func Dir(env, name string) (string, error) {
	if d := os.Getenv(env); d != "" {
		return d, nil
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(base, "crowdsec-apiban-bridge", name), nil
}

// Fill runs fill unless ready already holds, under a lock on dir so that
// test binaries running in parallel fill it once: whoever waited for the
// lock finds it ready.
func Fill(dir string, ready func() bool, fill func() error) error {
	if ready() {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		return err
	}
	defer syscall.Flock(int(f.Fd()), syscall.LOCK_UN) //nolint:errcheck // closing releases it anyway
	if ready() {
		return nil
	}
	return fill()
}
