package state

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// One engine at a time may own a state file: two would each push what the
// other is about to push and remove each other's push marker. The lock is
// an flock on a file beside the state file, held for the process's
// lifetime and released by the kernel however the process ends; the file
// holds the holder's PID for the error message and for `status`.

// LockPath is the lock file of the state file at statePath.
func LockPath(statePath string) string { return statePath + ".lock" }

// Lock is a held lock on a state file.
type Lock struct{ f *os.File }

// ErrLocked is returned (wrapped) by Acquire when another process holds
// the lock.
var ErrLocked = errors.New("state file in use")

// Acquire takes the lock of the state file at statePath without waiting.
// It first checks that the directory can be trusted (CheckDir).
func Acquire(statePath string) (*Lock, error) {
	dir := filepath.Dir(statePath)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("creating state directory: %w", err)
	}
	if err := CheckDir(statePath); err != nil {
		return nil, err
	}
	path := LockPath(statePath)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		pid := readPID(f)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s is held by PID %s (a running daemon, or another sync); stop it first", ErrLocked, path, pid)
		}
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	if err := writePID(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("writing lock file %s: %w", path, err)
	}
	return &Lock{f: f}, nil
}

// Release gives the lock up.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

// Holder reports whether another process holds the lock of the state file
// at statePath, and its PID as the lock file says. A missing lock file
// means nobody ever held it.
func Holder(statePath string) (pid string, held bool, err error) {
	f, err := os.Open(LockPath(statePath))
	if errors.Is(err, os.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("opening lock file: %w", err)
	}
	defer f.Close()
	// A shared lock is refused while an exclusive one is held, and is
	// released at once when it is not: asking changes nothing.
	switch err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); {
	case errors.Is(err, syscall.EWOULDBLOCK):
		return readPID(f), true, nil
	case err != nil:
		return "", false, fmt.Errorf("checking lock file: %w", err)
	}
	_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return "", false, nil
}

func writePID(f *os.File) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	_, err := f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return err
}

// readPID returns the PID in the lock file, checked to be a number so that
// nothing else reaches an error message or a terminal.
func readPID(f *os.File) string {
	b, err := io.ReadAll(io.LimitReader(io.NewSectionReader(f, 0, 32), 32))
	pid := strings.TrimSpace(string(b))
	if _, perr := strconv.Atoi(pid); err != nil || perr != nil {
		return "(unknown)"
	}
	return pid
}

// CheckDir refuses a state directory that another user could write to:
// whoever can replace the state file can make the bridge believe an
// address is banned until 2100 and never push it.
func CheckDir(statePath string) error {
	dir := filepath.Dir(statePath)
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("state_file directory: %w", err)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("state_file directory %s is writable by group or others (mode %04o): refusing to trust it (chmod go-w, or choose another state_file)",
			dir, fi.Mode().Perm())
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if ok && int(st.Uid) != os.Geteuid() {
		owner := strconv.Itoa(int(st.Uid))
		if u, err := user.LookupId(owner); err == nil {
			owner = u.Username
		}
		// Root too: files it wrote there would be root's, and the
		// service, running as the owner, could no longer use them.
		return fmt.Errorf("state_file directory %s belongs to %s, not to the running user (uid %d): refusing to use it; "+
			"run this as its owner (sudo -u %s ...)", dir, owner, os.Geteuid(), owner)
	}
	return nil
}
