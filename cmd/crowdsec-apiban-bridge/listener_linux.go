//go:build linux

package main

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Who listens on the metrics port, from /proc: a socket in LISTEN state on
// that port in /proc/net/tcp or tcp6 has an inode, and a process holds it
// as an fd linked to socket:[inode]. Why status asks the kernel rather
// than the answer: docs/operations.md, "status".

// procRoot is /proc; tests point it at a tree of their own.
var procRoot = "/proc"

// Bounds on what is read from /proc.
const (
	maxProcLines = 1 << 20 // sockets in one /proc/net table
	maxProcs     = 1 << 17 // processes scanned for a foreign socket's owner
	maxFDs       = 1 << 20 // fds of one process
)

// checkListener tells whether the TCP sockets listening on addr are the
// process pid's.
func checkListener(addr string, pid int) listener {
	inodes, err := listeningInodes(addr)
	switch {
	case err != nil:
		return listener{state: listenerUnknown, why: err.Error()}
	case len(inodes) == 0:
		return listener{state: listenerNone}
	}
	held, err := socketsOf(pid, inodes)
	if err != nil {
		return listener{state: listenerUnknown, why: fmt.Sprintf("cannot read the daemon's open files (%v): run status as the daemon's user or root", err)}
	}
	for _, ino := range inodes {
		if !held[ino] {
			return listener{state: listenerOther, other: ownerOf(ino)}
		}
	}
	return listener{state: listenerDaemon}
}

// whoListens names the process listening on addr, for bouncer-only mode,
// which holds no lock naming its daemon.
func whoListens(addr string) (string, error) {
	inodes, err := listeningInodes(addr)
	switch {
	case err != nil:
		return "", err
	case len(inodes) == 0:
		return "", errNoListener
	}
	return ownerOf(inodes[0]), nil
}

// listeningInodes returns the inodes of the sockets listening on addr's
// port whose address is addr's host, or a wildcard: those a connection to
// addr can reach.
func listeningInodes(addr string) ([]uint64, error) {
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	port, err := strconv.ParseUint(portText, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("port %q: %w", portText, err)
	}
	want, err := netip.ParseAddr(host)
	if err != nil {
		return nil, fmt.Errorf("host %q: %w", host, err)
	}
	var out []uint64
	for _, table := range []string{"net/tcp", "net/tcp6"} {
		f, err := os.Open(filepath.Join(procRoot, table))
		if errors.Is(err, fs.ErrNotExist) {
			continue // no IPv6 in this kernel
		}
		if err != nil {
			return nil, err
		}
		inodes, err := scanListening(f, uint16(port), want.Unmap())
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Join(procRoot, table), err)
		}
		out = append(out, inodes...)
	}
	return out, nil
}

// scanListening reads one /proc/net/tcp table: "sl local_address
// rem_address st ... inode", addresses as hex words in host byte order.
func scanListening(r io.Reader, port uint16, want netip.Addr) ([]uint64, error) {
	const listen = "0A"
	var out []uint64
	sc := bufio.NewScanner(r)
	for n := 0; sc.Scan(); n++ {
		if n > maxProcLines {
			return nil, fmt.Errorf("more than %d sockets", maxProcLines)
		}
		f := strings.Fields(sc.Text())
		if n == 0 || len(f) < 10 || f[3] != listen {
			continue // the header, or not listening
		}
		a, p, ok := parseProcAddr(f[1])
		if !ok || p != port || !(a == want || a.IsUnspecified() || want.IsUnspecified()) {
			continue
		}
		ino, err := strconv.ParseUint(f[9], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("inode %q: %w", f[9], err)
		}
		out = append(out, ino)
	}
	return out, sc.Err()
}

// parseProcAddr parses "0100007F:1F90" (IPv4) or 32 hex digits and a
// port (IPv6): each 32-bit word of the address is printed as the host
// stores it.
func parseProcAddr(s string) (netip.Addr, uint16, bool) {
	hexAddr, hexPort, ok := strings.Cut(s, ":")
	port, err := strconv.ParseUint(hexPort, 16, 16)
	raw, herr := hex.DecodeString(hexAddr)
	if !ok || err != nil || herr != nil || (len(raw) != 4 && len(raw) != 16) {
		return netip.Addr{}, 0, false
	}
	b := make([]byte, len(raw))
	for i := 0; i < len(raw); i += 4 {
		binary.NativeEndian.PutUint32(b[i:], binary.BigEndian.Uint32(raw[i:]))
	}
	a, _ := netip.AddrFromSlice(b)
	return a.Unmap(), uint16(port), true
}

// socketsOf returns which of inodes the process pid holds.
func socketsOf(pid int, inodes []uint64) (map[uint64]bool, error) {
	dir := filepath.Join(procRoot, strconv.Itoa(pid), "fd")
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names, err := f.Readdirnames(maxFDs)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("reading %s: %w", dir, err)
	}
	want := map[string]uint64{}
	for _, ino := range inodes {
		want["socket:["+strconv.FormatUint(ino, 10)+"]"] = ino
	}
	held := map[uint64]bool{}
	for _, name := range names {
		if link, err := os.Readlink(filepath.Join(dir, name)); err == nil {
			if ino, ok := want[link]; ok {
				held[ino] = true
			}
		}
	}
	return held, nil
}

// ownerOf names the process holding socket inode ino: "PID 123
// (\"name\")", or what could not be learnt. Processes whose open files
// cannot be read are passed over.
func ownerOf(ino uint64) string {
	d, err := os.Open(procRoot)
	if err != nil {
		return "its owner unknown: " + err.Error()
	}
	defer d.Close()
	names, _ := d.Readdirnames(maxProcs)
	for _, name := range names {
		pid, err := strconv.Atoi(name)
		if err != nil {
			continue
		}
		if held, err := socketsOf(pid, []uint64{ino}); err == nil && held[ino] {
			comm, _ := os.ReadFile(filepath.Join(procRoot, name, "comm"))
			return fmt.Sprintf("PID %d, %q", pid, strings.TrimSpace(string(comm)))
		}
	}
	return "its owner's open files could not be read"
}
