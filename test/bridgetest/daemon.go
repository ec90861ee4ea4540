package bridgetest

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// Daemon is the bridge running in the background for one test.
type Daemon struct {
	t   testing.TB
	Cmd *exec.Cmd
	Log *Buffer // stdout and stderr
	// exited is closed once the one Wait call returned, with its error in
	// err; the daemon's exit is read from there only, never from
	// Cmd.ProcessState, which Wait writes.
	exited chan struct{}
	err    error
}

// StartDaemon runs bin with args (and env added to the test's environment).
// At test end a daemon still running is killed, its output must not hold
// any of secrets, and on failure the output is logged with them redacted.
func StartDaemon(t testing.TB, bin string, env, secrets []string, args ...string) *Daemon {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	return StartCmd(t, cmd, secrets...)
}

// StartCmd is StartDaemon for a command built by the caller (run in a
// network namespace, or with fewer privileges); its output goes to Log.
func StartCmd(t testing.TB, cmd *exec.Cmd, secrets ...string) *Daemon {
	t.Helper()
	d := &Daemon{t: t, Cmd: cmd, Log: &Buffer{}, exited: make(chan struct{})}
	d.Cmd.Stdout, d.Cmd.Stderr = d.Log, d.Log
	if err := d.Cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		d.err = d.Cmd.Wait()
		close(d.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-d.exited:
		default:
			_ = d.Cmd.Process.Kill()
			<-d.exited
		}
		out := d.Log.String()
		AssertNoSecrets(t, out, secrets...)
		if t.Failed() {
			t.Logf("daemon output:\n%s", Redact(out, secrets...))
		}
	})
	return d
}

// Running fails the test if the daemon has exited.
func (d *Daemon) Running() {
	d.t.Helper()
	select {
	case <-d.exited:
		d.t.Fatalf("the daemon exited (%v):\n%s", d.err, d.Log.String())
	default:
	}
}

// Signal sends sig to the daemon.
func (d *Daemon) Signal(sig os.Signal) { _ = d.Cmd.Process.Signal(sig) }

// Stop sends SIGTERM, wants a clean exit within 20 seconds and returns
// everything the daemon wrote.
func (d *Daemon) Stop() string {
	d.t.Helper()
	d.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
		if d.err != nil {
			d.t.Fatalf("daemon exit: %v\n%s", d.err, d.Log.String())
		}
	case <-time.After(20 * time.Second):
		d.t.Fatalf("daemon did not stop on SIGTERM:\n%s", d.Log.String())
	}
	return d.Log.String()
}
