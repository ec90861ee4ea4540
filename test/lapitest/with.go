package lapitest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// With says where and on what a LAPI of StartWith runs: several LAPIs on
// one shared database (CrowdSec's high-availability setup), each in its
// own network namespace.
type With struct {
	// DBConfig is the body of db_config, e.g. "type: postgresql\nuser: ...".
	DBConfig string
	// Listen is LAPI's host:port.
	Listen string
	// NetNS is the network namespace (`ip netns` name) crowdsec and cscli
	// run in, and the readiness probe connects from; "" is the test's.
	NetNS string
	// Machine names cscli's own machine; LAPIs sharing a database need
	// one each (a second `machines add` of one name would change the
	// first one's password).
	Machine string
}

// StartWith prepares dir and starts a LAPI as w says; it is stopped at
// test end. The database must exist and be reachable from w.NetNS.
func StartWith(t testing.TB, dir string, w With) *LAPI {
	t.Helper()
	l, err := LaunchWith(dir, w)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Stop)
	return l
}

// LaunchWith is StartWith without a test: stop it with Stop.
func LaunchWith(dir string, w With) (*LAPI, error) {
	bins, err := EnsureBinaries()
	if err != nil {
		return nil, fmt.Errorf("crowdsec binaries: %w", err)
	}
	l := &LAPI{Bins: bins, Dir: dir, addr: w.Listen, URL: "http://" + w.Listen + "/", health: http.DefaultClient}
	if w.NetNS != "" {
		l.wrap = []string{"ip", "netns", "exec", w.NetNS}
		l.health = &http.Client{Transport: &http.Transport{DialContext: dialIn(w.NetNS)}, Timeout: 5 * time.Second}
	}
	if err := l.writeConfig(); err != nil {
		return nil, err
	}
	if err := l.useDB(w.DBConfig); err != nil {
		return nil, err
	}
	if err := l.AddCscli(w.Machine); err != nil {
		return nil, err
	}
	return l, l.Up()
}

// AddCscli registers (again, after a new database) the machine cscli
// logs in as, under name.
func (l *LAPI) AddCscli(name string) error {
	if name == "" {
		name = "cscli-tests"
	}
	_, err := l.CscliErr("machines", "add", name, "--auto", "--force", "-f", l.path("local_api_credentials.yaml"))
	return err
}

// useDB replaces the SQLite db_config that writeConfig wrote.
func (l *LAPI) useDB(body string) error {
	if body == "" {
		return nil
	}
	raw, err := os.ReadFile(l.ConfigPath())
	if err != nil {
		return err
	}
	sqlite := fmt.Sprintf("db_config:\n  type: sqlite\n  db_path: %[1]s/data/crowdsec.db\n  use_wal: true\n", l.Dir)
	if !strings.Contains(string(raw), sqlite) {
		return fmt.Errorf("lapitest: the config template's db_config changed; update useDB")
	}
	var b strings.Builder
	b.WriteString("db_config:\n")
	for _, line := range strings.Split(strings.TrimSpace(body), "\n") {
		b.WriteString("  " + line + "\n")
	}
	return os.WriteFile(l.ConfigPath(), []byte(strings.Replace(string(raw), sqlite, b.String(), 1)), 0o600)
}

// Wrapped is argv run inside this LAPI's namespace (as crowdsec and cscli
// are).
func (l *LAPI) wrapped(bin string, args ...string) []string {
	return append(append(append([]string{}, l.wrap...), bin), args...)
}

// dialIn dials TCP from inside the named network namespace: the socket
// belongs to it and keeps working once the thread switches back.
func dialIn(ns string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var c net.Conn
		err := InNetNS(ns, func() error {
			var err error
			c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}
}

// InNetNS runs f on a thread switched into the named namespace: sockets f
// opens belong to it. A thread that cannot switch back dies with its
// goroutine instead of serving others in the wrong namespace.
func InNetNS(ns string, f func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			done <- err
			return
		}
		defer orig.Close()
		target, err := os.Open("/run/netns/" + ns)
		if err != nil {
			done <- err
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			done <- err
			return
		}
		ferr := f()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			done <- err
			return
		}
		runtime.UnlockOSThread()
		done <- ferr
	}()
	return <-done
}

// PID is the running crowdsec process's (for its CPU time in benches);
// 0 when it is stopped.
func (l *LAPI) PID() int {
	if l.cmd == nil || l.cmd.Process == nil {
		return 0
	}
	return l.cmd.Process.Pid
}
