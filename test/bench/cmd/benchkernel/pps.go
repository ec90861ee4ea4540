package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bouncer"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bouncer/ipset"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bouncer/nftables"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/bench/benchfmt"
)

// The packet test's link: pbx 192.0.2.1 <-veth-> attacker 192.0.2.2, the
// attacker also holding a public-looking address outside every list (the
// traffic measured) and one on every list (the probe).
const (
	linkNet  = "192.0.2.0/24"
	pbxAddr  = "192.0.2.1"
	atkAddr  = "192.0.2.2"
	sipPort  = 5060
	payload  = 64 // bytes of UDP payload
	probeLen = 1000
)

// packet test configurations.
const (
	pNone      = "no rules"
	pNft       = "bouncer nftables table, N-element set"
	pIpset     = "bouncer ipset backend, N-element hash:net"
	pIpt       = "R iptables rules, one per IP (iptables-nft)"
	pIptLegacy = "R iptables rules, one per IP (iptables-legacy)"
)

// label is a configuration's name with the sizes of this run.
func label(c string, o options) string {
	return strings.NewReplacer("N-", benchfmt.Num(o.n)+"-", "R ", benchfmt.Num(o.rules)+" ").Replace(c)
}

var ppsOrder = []string{pNone, pNft, pIpset, pIpt, pIptLegacy}

type ppsRun struct {
	sent, received int64
	elapsed        time.Duration
	rcvbufErrors   int64
}

func (p ppsRun) rate() float64 { return float64(p.received) / p.elapsed.Seconds() }

func ppsBench(ctx context.Context, o options, _ string, addrs []netip.Addr, outside netip.Addr, r *results) error {
	elems := make([]bouncer.Element, len(addrs))
	for i, a := range addrs {
		elems[i] = bouncer.Element{Prefix: netip.PrefixFrom(a, 32), Timeout: banTime, Origin: ourOrigin}
	}
	rules := min(o.rules, len(addrs))
	probe := addrs[rules-1] // the last iptables rule; in the sets too
	order := ppsOrder
	if !have("iptables-legacy-restore") {
		order = order[:len(order)-1]
		logf("iptables-legacy-restore not installed: that configuration is left out")
	}
	r.pps = map[string][]ppsRun{}
	for round := 1; round <= o.ppsRuns; round++ {
		for _, c := range order {
			run, err := ppsOne(ctx, o, c, elems, addrs[:rules], outside, probe)
			if err != nil {
				return fmt.Errorf("%s: %w", label(c, o), err)
			}
			logf("packets round %d: %s: %.0f packets/s received (%d sent, %d received in %s, %d socket drops)",
				round, label(c, o), run.rate(), run.sent, run.received, benchfmt.Ms(run.elapsed), run.rcvbufErrors)
			r.pps[c] = append(r.pps[c], run)
		}
	}
	r.ppsOrder = order
	return nil
}

// ppsOne builds fresh pbx and attacker namespaces, loads configuration c
// into the pbx, checks it, measures, proves the rules drop the probe
// address and deletes the namespaces.
func ppsOne(ctx context.Context, o options, c string, elems []bouncer.Element, ruleAddrs []netip.Addr,
	outside, probe netip.Addr) (ppsRun, error) {
	pbx, err := newNS(ctx, "pbx")
	if err != nil {
		return ppsRun{}, err
	}
	defer pbx.close()
	atk, err := newNS(ctx, "atk")
	if err != nil {
		return ppsRun{}, err
	}
	defer atk.close()
	if err := link(ctx, pbx, atk, outside, probe); err != nil {
		return ppsRun{}, err
	}

	// Load and check; dropped reads the drop counters.
	var dropped func() (uint64, error)
	switch c {
	case pNone:
	case pNft:
		b, err := nftables.New(nftables.Options{Table: ourTable, SetPrefix: ourPrefix, InputChain: ourInput, Priority: -10, NetNSFd: pbx.fd()})
		if err != nil {
			return ppsRun{}, err
		}
		if err := b.Reconcile(ctx, elems); err != nil {
			return ppsRun{}, err
		}
		if got, err := pbx.nftCount(ctx, "inet", ourTable, ourV4Set); err != nil || got != len(elems) {
			return ppsRun{}, fmt.Errorf("set holds %d elements, want %d (%v)", got, len(elems), err)
		}
		dropped = func() (uint64, error) { d, err := b.Dropped(ctx); return bouncer.Total(d).Packets, err }
	case pIpset:
		b, err := ipset.New(ipset.Options{SetPrefix: ourPrefix, Chain: ipsetChain, Hooks: []string{"INPUT"},
			NetNSFd: pbx.fd(), CommandPrefix: []string{"ip", "netns", "exec", pbx.name}})
		if err != nil {
			return ppsRun{}, err
		}
		defer b.Close()
		if err := b.Reconcile(ctx, elems); err != nil {
			return ppsRun{}, err
		}
		set, _ := b.SetName(ourOrigin, false)
		if got, err := pbx.ipsetCount(ctx, set); err != nil || got != len(elems) {
			return ppsRun{}, fmt.Errorf("set holds %d elements, want %d (%v)", got, len(elems), err)
		}
		dropped = func() (uint64, error) { d, err := b.Dropped(ctx); return bouncer.Total(d).Packets, err }
	case pIpt, pIptLegacy:
		ipt := "iptables"
		if c == pIptLegacy {
			ipt = "iptables-legacy"
		}
		if _, err := pbx.run(ctx, iptablesScript(ruleAddrs), ipt+"-restore"); err != nil {
			return ppsRun{}, err
		}
		out, err := pbx.run(ctx, nil, ipt, "-w", "-S", "APIBAN")
		if err != nil {
			return ppsRun{}, err
		}
		if got := strings.Count(string(out), "-A APIBAN "); got != len(ruleAddrs) {
			return ppsRun{}, fmt.Errorf("chain APIBAN holds %d rules, want %d", got, len(ruleAddrs))
		}
		dropped = func() (uint64, error) {
			out, err := pbx.run(ctx, nil, ipt, "-w", "-L", "APIBAN", "-v", "-x", "-n")
			return dropLines(string(out)), err
		}
	}

	// The measurement: full speed from the outside address for a while.
	rcv, err := startReceiver(pbx)
	if err != nil {
		return ppsRun{}, err
	}
	sent, elapsed, serr := send(atk, outside, o.ppsSeconds, 0)
	received := rcv.stop()
	if serr != nil {
		return ppsRun{}, serr
	}
	run := ppsRun{sent: sent, received: received, elapsed: elapsed}
	if run.rcvbufErrors, err = udpRcvbufErrors(ctx, pbx); err != nil {
		return ppsRun{}, err
	}
	if received == 0 {
		return ppsRun{}, errors.New("no packet received from the outside address")
	}

	// The checks: nothing of that traffic was dropped by our rules, and
	// the probe address (on every list) is dropped and counted.
	if dropped != nil {
		before, err := dropped()
		if err != nil {
			return ppsRun{}, err
		}
		if before != 0 {
			return ppsRun{}, fmt.Errorf("the rules dropped %d packets from %s, which is on no list", before, outside)
		}
	}
	rcv, err = startReceiver(pbx)
	if err != nil {
		return ppsRun{}, err
	}
	psent, _, serr := send(atk, probe, time.Minute, probeLen)
	preceived := rcv.stop()
	if serr != nil {
		return ppsRun{}, serr
	}
	if dropped == nil {
		if preceived != psent {
			return ppsRun{}, fmt.Errorf("no rules, yet %d of %d probe packets received", preceived, psent)
		}
		return run, nil
	}
	after, err := dropped()
	if err != nil {
		return ppsRun{}, err
	}
	if preceived != 0 || after != uint64(psent) {
		return ppsRun{}, fmt.Errorf("probe from %s: %d of %d received, %d dropped by the rules; want 0 and %d", probe, preceived, psent, after, psent)
	}
	return run, nil
}

// link joins pbx and attacker with a veth pair: pbx 192.0.2.1/24,
// attacker 192.0.2.2/24 plus the source addresses, and a default route on
// the pbx back over the link.
func link(ctx context.Context, pbx, atk *ns, srcs ...netip.Addr) error {
	steps := []struct {
		n    *ns
		args []string
	}{
		{nil, []string{"ip", "link", "add", "bkp0", "netns", pbx.name, "type", "veth", "peer", "name", "bka0", "netns", atk.name}},
		{pbx, []string{"ip", "addr", "add", pbxAddr + "/24", "dev", "bkp0"}},
		{pbx, []string{"ip", "link", "set", "bkp0", "up"}},
		{pbx, []string{"ip", "route", "add", "default", "dev", "bkp0"}},
		{atk, []string{"ip", "addr", "add", atkAddr + "/24", "dev", "bka0"}},
		{atk, []string{"ip", "link", "set", "bka0", "up"}},
	}
	for _, s := range srcs {
		steps = append(steps, struct {
			n    *ns
			args []string
		}{atk, []string{"ip", "addr", "add", s.String() + "/32", "dev", "bka0"}})
	}
	for _, s := range steps {
		var err error
		if s.n == nil {
			_, err = runCmd(ctx, s.args...)
		} else {
			_, err = s.n.run(ctx, nil, s.args...)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// iptablesScript is the official APIBAN client's layout for
// iptables-restore: a chain APIBAN jumped to from INPUT, one DROP rule
// per address (generated addresses only).
func iptablesScript(addrs []netip.Addr) []byte {
	var b strings.Builder
	b.WriteString("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:APIBAN - [0:0]\n-A INPUT -j APIBAN\n")
	for _, a := range addrs {
		fmt.Fprintf(&b, "-A APIBAN -s %s/32 -j DROP\n", a)
	}
	b.WriteString("COMMIT\n")
	return []byte(b.String())
}

// dropLines sums the packets of the DROP lines of `iptables -L -v -x -n`.
func dropLines(out string) uint64 {
	var total uint64
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[2] == "DROP" {
			if p, err := strconv.ParseUint(f[0], 10, 64); err == nil {
				total += p
			}
		}
	}
	return total
}

// udpRcvbufErrors is the pbx's Udp RcvbufErrors (datagrams that passed
// the firewall but found the socket's buffer full).
func udpRcvbufErrors(ctx context.Context, pbx *ns) (int64, error) {
	out, err := pbx.run(ctx, nil, "cat", "/proc/net/snmp")
	if err != nil {
		return 0, err
	}
	var head []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "Udp:" {
			continue
		}
		if head == nil {
			head = f
			continue
		}
		for i, h := range head {
			if h == "RcvbufErrors" && i < len(f) {
				return strconv.ParseInt(f[i], 10, 64)
			}
		}
	}
	return 0, errors.New("/proc/net/snmp: no Udp RcvbufErrors")
}

type receiver struct {
	fd    int
	count atomic.Int64
	quit  atomic.Bool
	done  chan struct{}
}

// startReceiver opens a UDP socket on the pbx (port 5060, a big buffer)
// and counts what arrives until stop.
func startReceiver(pbx *ns) (*receiver, error) {
	r := &receiver{fd: -1, done: make(chan struct{})}
	err := pbx.do(func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		r.fd = fd
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 32<<20); err != nil {
			return err
		}
		tv := unix.Timeval{Usec: 100_000}
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrInet4{Port: sipPort, Addr: netip.MustParseAddr(pbxAddr).As4()})
	})
	if err != nil {
		if r.fd >= 0 {
			unix.Close(r.fd)
		}
		return nil, fmt.Errorf("receiver: %w", err)
	}
	go func() {
		defer close(r.done)
		buf := make([]byte, 2048)
		for {
			_, err := unix.Read(r.fd, buf)
			switch {
			case err == nil:
				r.count.Add(1)
			case err == unix.EAGAIN || err == unix.EINTR:
				if r.quit.Load() {
					return
				}
			default:
				return
			}
		}
	}()
	return r, nil
}

// stop waits until the socket has been drained (a 100 ms read timeout
// with nothing left) and returns the count.
func (r *receiver) stop() int64 {
	r.quit.Store(true)
	<-r.done
	unix.Close(r.fd)
	return r.count.Load()
}

// send sends 64-byte UDP datagrams from src to the pbx's port 5060 as
// fast as one thread can, for d or until count have gone (count 0: no
// limit), from a thread inside the attacker namespace.
func send(atk *ns, src netip.Addr, d time.Duration, count int64) (sent int64, elapsed time.Duration, err error) {
	err = atk.do(func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: src.As4()}); err != nil {
			return fmt.Errorf("bind %s: %w", src, err)
		}
		if err := unix.Connect(fd, &unix.SockaddrInet4{Port: sipPort, Addr: netip.MustParseAddr(pbxAddr).As4()}); err != nil {
			return err
		}
		buf := make([]byte, payload)
		start := time.Now()
		deadline := start.Add(d)
		var failed int64
		for i := int64(0); count == 0 || sent < count; i++ {
			if i%8 == 0 && time.Now().After(deadline) {
				break
			}
			if _, err := unix.Write(fd, buf); err != nil {
				// ENOBUFS and the like: not sent; give up only if
				// nothing gets through at all.
				if failed++; failed > 1_000_000 && sent == 0 {
					return fmt.Errorf("send: %w", err)
				}
				continue
			}
			sent++
		}
		elapsed = time.Since(start)
		return nil
	})
	return sent, elapsed, err
}
