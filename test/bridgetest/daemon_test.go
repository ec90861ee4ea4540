package bridgetest

import (
	"errors"
	"syscall"
	"testing"
	"time"
)

// TestDaemonKilledBehindItsBack: a daemon that exits without Stop (here
// killed, as the crash tests do) is cleaned up without a data race on its
// exit status (run with -race: the cleanup once read Cmd.ProcessState
// while the Wait goroutine wrote it).
func TestDaemonKilledBehindItsBack(t *testing.T) {
	t.Run("killed", func(t *testing.T) {
		d := StartDaemon(t, "/bin/sleep", nil, nil, "60")
		d.Signal(syscall.SIGKILL)
		// Wait for the reap without synchronising with the Wait goroutine,
		// as a test that only watches the process would.
		pid := d.Cmd.Process.Pid
		Eventually(t, 10*time.Second, "the killed daemon reaped", func() bool {
			return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
		})
	})
}

// TestPoll: Poll reports a condition that comes to hold, and one that
// never does once the limit passed.
func TestPoll(t *testing.T) {
	n := 0
	if !Poll(10*time.Second, func() bool { n++; return n == 3 }) || n != 3 {
		t.Errorf("Poll stopped after %d calls, want true after 3", n)
	}
	began := time.Now()
	if Poll(100*time.Millisecond, func() bool { return false }) {
		t.Error("Poll reported a condition that never held")
	}
	if time.Since(began) < 100*time.Millisecond {
		t.Error("Poll gave up before its limit")
	}
}
