// Package netns gives tests throw-away network namespaces (created with
// `ip netns add`, removed at cleanup), a way to run code or commands
// inside them, and veth links between them. The tests that use it need
// root (CI runs them as root); in -short mode they are skipped.
package netns

import (
	"crypto/rand"
	"encoding/hex"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// NS is one namespace, deleted when the test ends.
type NS struct {
	Name string
	file *os.File
}

// Require skips in -short mode and fails when the test cannot create
// namespaces or lacks the tools, rather than passing without testing.
func Require(t *testing.T, tools ...string) {
	t.Helper()
	if testing.Short() {
		t.Skip("kernel test: needs root and network namespaces")
	}
	if os.Geteuid() != 0 {
		t.Fatal("kernel test: run as root (CI does), or use -short")
	}
	for _, tool := range append([]string{"ip"}, tools...) {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("kernel test: %s not installed (apt-get install iproute2 nftables ipset iptables)", tool)
		}
	}
}

// New creates a namespace named prefix plus a random suffix, with its
// loopback up.
func New(t *testing.T, prefix string) *NS {
	t.Helper()
	name := prefix + "-" + suffix()
	Cmd(t, "ip", "netns", "add", name)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	f, err := os.Open("/run/netns/" + name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	n := &NS{Name: name, file: f}
	n.Cmd(t, "ip", "link", "set", "lo", "up")
	return n
}

func suffix() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Fd is the namespace's file descriptor (for nftables.WithNetNSFd).
func (n *NS) Fd() int { return int(n.file.Fd()) }

// Cmd runs a command inside the namespace and returns its output; a
// failure fails the test.
func (n *NS) Cmd(t *testing.T, args ...string) string {
	t.Helper()
	return Cmd(t, append([]string{"ip", "netns", "exec", n.Name}, args...)...)
}

// Try runs a command inside the namespace and returns its output and error.
func (n *NS) Try(args ...string) (string, error) {
	out, err := exec.Command("ip", append([]string{"netns", "exec", n.Name}, args...)...).CombinedOutput()
	return string(out), err
}

// Cmd runs a command (in the test's namespace) and fails the test on error.
func Cmd(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Do runs f on an OS thread switched into the namespace: sockets f opens
// belong to the namespace and keep working after Do returns.
func (n *NS) Do(t *testing.T, f func()) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		// The thread is never unlocked: if switching back failed, it dies
		// with the goroutine instead of serving others in the wrong
		// namespace.
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			done <- err
			return
		}
		defer orig.Close()
		if err := unix.Setns(n.Fd(), unix.CLONE_NEWNET); err != nil {
			done <- err
			return
		}
		f()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			done <- err
			return
		}
		runtime.UnlockOSThread()
		done <- nil
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// Link joins a and b with a veth pair (aIf in a, bIf in b), both up.
func Link(t *testing.T, a *NS, aIf string, b *NS, bIf string) {
	t.Helper()
	Cmd(t, "ip", "link", "add", aIf, "netns", a.Name, "type", "veth", "peer", "name", bIf, "netns", b.Name)
	a.Cmd(t, "ip", "link", "set", aIf, "up")
	b.Cmd(t, "ip", "link", "set", bIf, "up")
}

// SendUDP sends one datagram from src to dst:port inside the namespace
// (both addresses must be local to it, e.g. on lo, for the packet to go
// through the input hook).
func (n *NS) SendUDP(t *testing.T, src, dst string, port int) {
	t.Helper()
	var err error
	n.Do(t, func() {
		var c *net.UDPConn
		c, err = net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP(src)}, &net.UDPAddr{IP: net.ParseIP(dst), Port: port})
		if err != nil {
			return
		}
		defer c.Close()
		_, err = c.Write([]byte("probe"))
	})
	if err != nil {
		t.Fatal(err)
	}
}

// ListenTCP listens on addr inside n; the listener closes at test end.
// Its sockets stay in n whichever goroutine serves them (an APIBAN
// simulator for a bridge inside n, a server a test bans).
func (n *NS) ListenTCP(t *testing.T, addr string) net.Listener {
	t.Helper()
	var ln net.Listener
	var err error
	n.Do(t, func() { ln, err = net.Listen("tcp", addr) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// Forward listens on addr inside n and relays each connection to target,
// dialled from the test's own namespace (LAPI listens on the host's
// loopback only). It returns the address inside n; the listener closes
// at test end.
func (n *NS) Forward(t *testing.T, addr, target string) string {
	t.Helper()
	ln := n.ListenTCP(t, addr)
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			go relay(in, target)
		}
	}()
	return ln.Addr().String()
}

func relay(in net.Conn, target string) {
	defer in.Close()
	out, err := net.Dial("tcp", target)
	if err != nil {
		return
	}
	defer out.Close()
	go func() { _, _ = io.Copy(out, in) }()
	_, _ = io.Copy(in, out)
}
