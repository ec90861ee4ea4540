package cluster

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/netns"
)

// The hub namespace holds the bridge device br0 (hubAddr) and with it the
// database and the APIBAN simulator; every other namespace hangs off br0
// by a veth pair. Private addresses, inside namespaces this test made.
const (
	hubAddr = "10.77.0.1"
	prefix  = "/24"
)

type hub struct {
	ns    *netns.NS
	links int
}

func newHub(t *testing.T) *hub {
	t.Helper()
	h := &hub{ns: netns.New(t, "hub")}
	// A fixed MAC: a bridge otherwise takes its lowest port's, which
	// changes as ports join, and neighbours' ARP entries for hubAddr go
	// stale (connections to the database or the simulator then hang).
	h.ns.Cmd(t, "ip", "link", "add", "br0", "address", "02:77:00:00:00:01", "type", "bridge")
	h.ns.Cmd(t, "ip", "addr", "add", hubAddr+prefix, "dev", "br0")
	h.ns.Cmd(t, "ip", "link", "set", "br0", "up")
	return h
}

// attach makes a namespace named name with eth0 at addr on br0, its
// default route through the hub.
func (h *hub) attach(t *testing.T, name, addr string) *netns.NS {
	t.Helper()
	ns := netns.New(t, name)
	h.links++
	port := fmt.Sprintf("hp%d", h.links)
	netns.Link(t, ns, "eth0", h.ns, port)
	h.ns.Cmd(t, "ip", "link", "set", port, "master", "br0")
	ns.Cmd(t, "ip", "addr", "add", addr+prefix, "dev", "eth0")
	ns.Cmd(t, "ip", "route", "add", "default", "via", hubAddr)
	return ns
}

// proc is the bridge binary running inside a namespace.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *logBuffer
	done chan struct{}
}

// startProc runs bin -c cfg inside ns (`ip netns exec` execs it, so the
// PID is the bridge's own). It is stopped when owner ends (a subtest may
// start what outlives it).
func startProc(t, owner *testing.T, name string, ns *netns.NS, bin, cfg string) *proc {
	t.Helper()
	p := &proc{name: name, out: &logBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command("ip", "netns", "exec", ns.Name, bin, "-c", cfg)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	owner.Cleanup(func() {
		p.stop()
		if owner.Failed() {
			owner.Logf("%s output (tail):\n%s", name, tail(p.out.String(), 3000))
		}
	})
	return p
}

// stop ends the process with SIGTERM (the bouncer removes its tables).
func (p *proc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// kill is kill -9.
func (p *proc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// logBuffer is a goroutine-safe output buffer.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// writeFile writes a 0600 file in dir and returns its path.
func writeFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// waitFor polls cond every 100 ms until it holds or limit passes, and
// returns how long it took.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > limit {
			t.Fatalf("after %s: %s", limit, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return time.Since(start)
}

// lines counts the lines of out that contain every part.
func lines(out string, parts ...string) int {
	n := 0
	for _, line := range strings.Split(out, "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			n++
		}
	}
	return n
}
