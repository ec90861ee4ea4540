package netns

import (
	"net"
	"sync"
	"testing"
	"time"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/bridgetest"
)

// UDPListener is the one UDP receiver of the kernel tests: bound to an
// address inside a namespace, it records every payload that arrives and
// counts datagrams by source address; an echoing one answers each
// datagram with its payload. It closes at test end.
type UDPListener struct {
	mu       sync.Mutex
	payloads map[string]bool
	from     map[string]int
}

// ListenUDP opens addr (IPv4 "IP:port"; IP may be empty for every address
// of n) inside n.
func (n *NS) ListenUDP(t *testing.T, addr string, echo bool) *UDPListener {
	t.Helper()
	a, err := net.ResolveUDPAddr("udp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	var c *net.UDPConn
	n.Do(t, func() { c, err = net.ListenUDP("udp4", a) })
	if err != nil {
		t.Fatal(err)
	}
	l := &UDPListener{payloads: map[string]bool{}, from: map[string]int{}}
	done := make(chan struct{})
	t.Cleanup(func() { c.Close(); <-done })
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, src, err := c.ReadFromUDP(buf)
			if err != nil {
				return
			}
			l.mu.Lock()
			l.payloads[string(buf[:n])] = true
			l.from[src.IP.String()]++
			l.mu.Unlock()
			if echo {
				_, _ = c.WriteToUDP(buf[:n], src)
			}
		}
	}()
	return l
}

// From is how many datagrams came from the address src.
func (l *UDPListener) From(src string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.from[src]
}

// Arrived reports whether any of payloads arrives within a second.
func (l *UDPListener) Arrived(payloads ...string) bool {
	return bridgetest.Poll(time.Second, func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		for _, p := range payloads {
			if l.payloads[p] {
				return true
			}
		}
		return false
	})
}
