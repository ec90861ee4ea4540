//go:build linux

package main

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// procHex is a's form in /proc/net/tcp: each 32-bit word as the host
// stores it.
func procHex(a netip.Addr, port int) string {
	b := a.AsSlice()
	var s strings.Builder
	for i := 0; i < len(b); i += 4 {
		fmt.Fprintf(&s, "%08X", binary.NativeEndian.Uint32(b[i:]))
	}
	return fmt.Sprintf("%s:%04X", s.String(), port)
}

// fakeProc writes a /proc with the sockets given (address, port, state,
// inode) and processes holding socket inodes as fds, and points procRoot
// at it.
func fakeProc(t *testing.T, sockets []string, procs map[int][]uint64) {
	t.Helper()
	root := t.TempDir()
	var v4, v6 strings.Builder
	v4.WriteString("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n")
	v6.WriteString("  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n")
	for i, s := range sockets {
		var addr string
		var port int
		var st string
		var ino uint64
		if _, err := fmt.Sscan(s, &addr, &port, &st, &ino); err != nil {
			t.Fatal(err)
		}
		a := netip.MustParseAddr(addr)
		table, remote := &v4, netip.IPv4Unspecified()
		if a.Is6() {
			table, remote = &v6, netip.IPv6Unspecified()
		}
		fmt.Fprintf(table, "%4d: %s %s %s 00000000:00000000 00:00000000 00000000     0        0 %d 1 0000000000000000 100 0 0 10 0\n",
			i, procHex(a, port), procHex(remote, 0), st, ino)
	}
	write := func(path, text string) {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(root, "net", "tcp"), v4.String())
	write(filepath.Join(root, "net", "tcp6"), v6.String())
	for pid, inodes := range procs {
		dir := filepath.Join(root, strconv.Itoa(pid))
		write(filepath.Join(dir, "comm"), fmt.Sprintf("proc%d\n", pid))
		if inodes == nil {
			write(filepath.Join(dir, "fd"), "") // a file where the fd directory should be: unreadable
			continue
		}
		if err := os.MkdirAll(filepath.Join(dir, "fd"), 0o755); err != nil {
			t.Fatal(err)
		}
		for i, ino := range inodes {
			if err := os.Symlink(fmt.Sprintf("socket:[%d]", ino), filepath.Join(dir, "fd", strconv.Itoa(i+3))); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Symlink("/dev/null", filepath.Join(dir, "fd", "0")); err != nil {
			t.Fatal(err)
		}
	}
	old := procRoot
	procRoot = root
	t.Cleanup(func() { procRoot = old })
}

func TestCheckListener(t *testing.T) {
	sockets := []string{
		"127.0.0.1 60603 0A 111", // the metrics port, listening
		"127.0.0.1 60603 01 112", // a connection to it: not a listener
		"127.0.0.2 60603 0A 113", // another address
		"0.0.0.0 60604 0A 114",   // another port
		"::1 60603 0A 115",       // another address, IPv6
	}
	cases := []struct {
		name    string
		sockets []string
		procs   map[int][]uint64
		pid     int
		want    listener
	}{
		{"the daemon's", sockets, map[int][]uint64{10: {114, 111}}, 10, listener{state: listenerDaemon}},
		{"a squatter's", sockets, map[int][]uint64{10: {114}, 20: {111}}, 10, listener{state: listenerOther, other: `PID 20, "proc20"`}},
		{"a squatter on the wildcard", append(sockets, ":: 60603 0A 116"), map[int][]uint64{10: {111}, 20: {116}}, 10,
			listener{state: listenerOther, other: `PID 20, "proc20"`}},
		{"a squatter nobody can name", sockets, map[int][]uint64{10: {114}, 20: nil}, 10,
			listener{state: listenerOther, other: "its owner's open files could not be read"}},
		{"nobody", sockets[1:], map[int][]uint64{10: {114}}, 10, listener{state: listenerNone}},
		{"unreadable", sockets, map[int][]uint64{10: nil}, 10, listener{state: listenerUnknown}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fakeProc(t, c.sockets, c.procs)
			got := checkListener("127.0.0.1:60603", c.pid)
			if c.want.state == listenerUnknown {
				if got.state != listenerUnknown || !strings.Contains(got.why, "cannot read the daemon's open files") {
					t.Fatalf("got %+v, want it unknown, saying why", got)
				}
				return
			}
			if got != c.want {
				t.Fatalf("got %+v, want %+v", got, c.want)
			}
		})
	}
}

// Against the real kernel: the test's own listener is its own, and, read
// as another PID's, is named as the test's.
func TestCheckListenerReal(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	if got := checkListener(addr, os.Getpid()); got.state != listenerDaemon {
		t.Fatalf("own listener: %+v", got)
	}
	if os.Geteuid() != 0 {
		t.Skip("naming the owner needs root, to read PID 1's open files")
	}
	got := checkListener(addr, 1)
	if want := fmt.Sprintf("PID %d, ", os.Getpid()); got.state != listenerOther || !strings.HasPrefix(got.other, want) {
		t.Fatalf("as PID 1's: %+v, want another process named %q...", got, want)
	}
	who, err := whoListens(addr)
	if err != nil || !strings.HasPrefix(who, fmt.Sprintf("PID %d, ", os.Getpid())) {
		t.Fatalf("whoListens: %q, %v", who, err)
	}
	ln.Close()
	if got := checkListener(addr, os.Getpid()); got.state != listenerNone {
		t.Fatalf("after close: %+v", got)
	}
}
