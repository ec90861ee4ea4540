package state

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// A state directory another user could write to, or that belongs to
// another user, is refused before anything is read or locked.
func TestCheckDirRefusesUntrustedDirectories(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	if err := os.Mkdir(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "state.json")
	if err := CheckDir(path); err != nil {
		t.Fatalf("a 0750 directory of the running user: %v", err)
	}
	for _, mode := range []os.FileMode{0o770, 0o757, 0o777} {
		if err := os.Chmod(dir, mode); err != nil {
			t.Fatal(err)
		}
		err := CheckDir(path)
		if err == nil || !strings.Contains(err.Error(), "is writable by group or others") {
			t.Fatalf("mode %04o: err %v, want a refusal", mode, err)
		}
		if _, lerr := Acquire(path); lerr == nil {
			t.Fatalf("mode %04o: Acquire took the lock of an untrusted directory", mode)
		}
	}
	if err := os.Chmod(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() != 0 {
		t.Log("not root: the other-owner case needs chown")
		return
	}
	if err := os.Chown(dir, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	err := CheckDir(path)
	if err == nil || !strings.Contains(err.Error(), "not to the running user") || !strings.Contains(err.Error(), "sudo -u") {
		t.Fatalf("a directory of uid 65534: err %v, want a refusal naming the owner and sudo -u", err)
	}
}

// The lock is exclusive while held, tells who holds it, and is free once
// released.
func TestLockIsExclusiveAndNamesItsHolder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	l, err := Acquire(path)
	if err != nil {
		t.Fatal(err)
	}
	if pid, held, err := Holder(path); err != nil || !held || pid != strconv.Itoa(os.Getpid()) {
		t.Fatalf("Holder = %q, %v, %v; want this PID, held", pid, held, err)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if _, held, err := Holder(path); err != nil || held {
		t.Fatalf("after Release: held %v, %v", held, err)
	}
}
