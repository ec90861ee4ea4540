package netns

import (
	"io"
	"net"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/apibansim"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/bridgetest"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/lapitest"
)

// Addresses of the lockout test, beside pbxAddr, banned and clean.
const (
	lapiAddr = "198.51.100.50" // LAPI as the pbx reaches it: a relay in the atk namespace
	flooder  = "192.0.2.12"    // floods the pbx from before its ban
	server   = "192.0.2.13"    // banned, but the pbx talks to it
	lateBan  = "192.0.2.14"    // banned last: the pbx still hears LAPI
	wideBan  = "192.0.0.0/8"   // a /8 over the attackers
)

// flood sends a datagram every 5 ms from src (in ns) to dst until the
// test ends, and counts the echoes it gets back.
type flood struct {
	sent, echoed atomic.Int64
}

func startFlood(t *testing.T, ns *NS, src, dst string) *flood {
	t.Helper()
	var c *net.UDPConn
	var err error
	ns.Do(t, func() {
		var d *net.UDPAddr
		if d, err = net.ResolveUDPAddr("udp4", dst); err == nil {
			c, err = net.DialUDP("udp4", &net.UDPAddr{IP: net.ParseIP(src)}, d)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	f := &flood{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	t.Cleanup(func() { close(stop); c.Close(); wg.Wait() })
	go func() {
		defer wg.Done()
		buf := make([]byte, 100)
		for {
			if _, err := c.Read(buf); err != nil {
				select {
				case <-stop:
					return
				default:
					continue // ICMP errors
				}
			}
			f.echoed.Add(1)
		}
	}()
	go func() {
		defer wg.Done()
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if _, err := c.Write([]byte("INVITE sip:100@pbx SIP/2.0")); err == nil {
					f.sent.Add(1)
				}
			}
		}
	}()
	return f
}

// established counts the packets the pbx's own stateful rule saw in state
// established: proof that conntrack tracks the flood before its ban.
func established(t *testing.T, mode string, pbx *NS) func() int {
	t.Helper()
	if mode == "ipset" {
		pbx.Cmd(t, "iptables", "-w", "-A", "INPUT", "-p", "udp", "--dport", "5070", "-m", "conntrack", "--ctstate", "ESTABLISHED")
		return func() int {
			out := pbx.Cmd(t, "iptables", "-w", "-L", "INPUT", "-v", "-x", "-n")
			for line := range strings.Lines(out) {
				if f := strings.Fields(line); len(f) > 0 && strings.Contains(line, "ESTABLISHED") {
					n, _ := strconv.Atoi(f[0])
					return n
				}
			}
			return -1
		}
	}
	pbx.Cmd(t, "nft", "add table inet host")
	pbx.Cmd(t, "nft", "add chain inet host in { type filter hook input priority 0; policy accept; }")
	pbx.Cmd(t, "nft", "add rule inet host in udp dport 5070 ct state established counter")
	re := regexp.MustCompile(`ct state established counter packets (\d+)`)
	return func() int {
		m := re.FindStringSubmatch(pbx.NftTable("inet", "host"))
		if m == nil {
			return -1
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
}

// metrics reads the daemon's /metrics inside ns.
func metrics(t *testing.T, ns *NS, addr string) string {
	t.Helper()
	var c net.Conn
	var err error
	ns.Do(t, func() { c, err = net.Dial("tcp", addr) })
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// TestNeverLocksOut runs the real binary, bridge and bouncer of every
// origin, in the pbx namespace, reaching LAPI at a routed address. cscli
// bans the pbx's own address, LAPI's and a /8 over the attackers: none
// reaches the kernel, each is counted once by reason, the pbx still hears
// LAPI and answers a clean address. A banned server the pbx talks to still
// answers it (replies are exempt), while a banned attacker's UDP flood,
// tracked by conntrack since before its ban and answered by the pbx, is
// dropped from the ban on.
func TestNeverLocksOut(t *testing.T) {
	Require(t, "nft", "ipset", "iptables")
	for _, mode := range []string{"nftables", "ipset"} {
		t.Run(mode, func(t *testing.T) { testNeverLocksOut(t, mode) })
	}
}

func testNeverLocksOut(t *testing.T, mode string) {
	bin, err := bridgetest.Build(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	l := lapitest.Start(t)
	const bouncerKey, password, apibanKey = "lockout-bouncer-key-3c1d", "lockout-machine-pw-8e", "lockout-apiban-key-51"
	l.Cscli(t, "bouncers", "add", "apiban-bridge-fw", "-k", bouncerKey)
	l.AddMachine(t, "crowdsec-apiban-bridge", password)

	pbx, atk := New(t, "pbx"), New(t, "atk")
	Link(t, pbx, "vpbx", atk, "vatk")
	pbx.Cmd(t, "ip", "addr", "add", pbxAddr+"/24", "dev", "vpbx")
	for _, r := range []string{"192.0.2.0/24", "198.51.100.0/24"} {
		pbx.Cmd(t, "ip", "route", "add", r, "dev", "vpbx")
	}
	atk.Cmd(t, "ip", "addr", "add", clean+"/24", "dev", "vatk")
	for _, a := range []string{banned, flooder, server, lateBan, lapiAddr} {
		atk.Cmd(t, "ip", "addr", "add", a+"/32", "dev", "vatk")
	}
	u, err := url.Parse(l.URL)
	if err != nil {
		t.Fatal(err)
	}
	lapiURL := "http://" + atk.Forward(t, lapiAddr+":0", u.Host) + "/"
	probe := newProbe(t, pbx, atk, banned, server, clean)
	serverEcho := atk.ListenUDP(t, server+":7000", true)
	tcpLn := atk.ListenTCP(t, server+":7001")
	go func() {
		for {
			c, err := tcpLn.Accept()
			if err != nil {
				return
			}
			_, _ = io.WriteString(c, "hello from a banned server\n")
			c.Close()
		}
	}()

	// The host's own stateful rule, then the flood, answered by the pbx.
	estab := established(t, mode, pbx)
	pbxEcho := pbx.ListenUDP(t, pbxAddr+":5070", true)
	fl := startFlood(t, atk, flooder, pbxAddr+":5070")

	simLn := pbx.ListenTCP(t, "127.0.0.1:0")
	sim := apibansim.New(apibansim.Options{Key: apibanKey, MaxRequests: apibansim.Unlimited, Listener: simLn})
	t.Cleanup(sim.Close)
	dir := t.TempDir()
	cfgPath := bridgetest.Config{
		APIBAN: bridgetest.APIBAN{APIKey: apibanKey, URL: "http://" + simLn.Addr().String(),
			MaxRequests: new(0), PollInterval: 10 * time.Second},
		CrowdSec:   bridgetest.CrowdSec{LAPIURL: lapiURL, Password: password},
		StateFile:  filepath.Join(dir, "state.json"),
		LogLevel:   "debug",
		Prometheus: bridgetest.Prometheus{Enabled: new(true), ListenAddr: "127.0.0.1", ListenPort: new(60603)},
		Bouncer: bridgetest.Bouncer{Enabled: new(true), APIKey: bouncerKey, UpdateFrequency: time.Second,
			Mode: mode},
	}.Write(t, dir)

	d := bridgetest.StartDaemon(t, "ip", nil, []string{bouncerKey, password, apibanKey}, "netns", "exec", pbx.Name, bin, "-c", cfgPath)
	bridgetest.Eventually(t, 60*time.Second, "the bouncer's objects", func() bool { return ourObjects(t, mode, pbx) != "" })
	bridgetest.Eventually(t, 10*time.Second, "the flood tracked as established", func() bool {
		return pbxEcho.From(flooder) > 20 && fl.echoed.Load() > 20 && estab() > 20
	})

	for _, args := range [][]string{
		{"--ip", pbxAddr}, {"--ip", lapiAddr}, {"--range", wideBan},
		{"--ip", banned}, {"--ip", flooder}, {"--ip", server},
	} {
		l.Cscli(t, append([]string{"decisions", "add", "--duration", "1h", "--reason", "lockout test"}, args...)...)
	}
	bridgetest.Eventually(t, 30*time.Second, "the attackers' bans in the kernel", func() bool {
		e := ourElements(t, mode, pbx)
		return has(e, banned+"/32") && has(e, flooder+"/32") && has(e, server+"/32")
	})
	e := ourElements(t, mode, pbx)
	for _, p := range []string{pbxAddr + "/32", lapiAddr + "/32", wideBan} {
		if has(e, p) {
			t.Errorf("%s in the kernel sets: %v", p, e)
		}
	}
	if len(e) != 3 {
		t.Errorf("kernel sets hold %v, want the three attackers", e)
	}

	// The flood, tracked and answered since before its ban, stops.
	time.Sleep(300 * time.Millisecond) // the echo drains what arrived before
	got, sent := pbxEcho.From(flooder), fl.sent.Load()
	time.Sleep(time.Second)
	if after, sentAfter := pbxEcho.From(flooder), fl.sent.Load(); after != got || sentAfter-sent < 50 {
		t.Errorf("flood after its ban: %d datagrams arrived of %d sent, want none of many", after-got, sentAfter-sent)
	}
	probe.want(banned, false, "banned attacker")
	probe.want(server, false, "banned server starting traffic itself")
	probe.want(clean, true, "clean address")

	// The pbx talks to the banned server: its answers arrive.
	var uc *net.UDPConn
	pbx.Do(t, func() { uc, err = net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.ParseIP(server), Port: 7000}) })
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	_ = uc.SetDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 100)
	if _, err := uc.Write([]byte("query")); err != nil {
		t.Fatal(err)
	}
	if n, err := uc.Read(buf); err != nil || string(buf[:n]) != "query" || serverEcho.From(pbxAddr) != 1 {
		t.Errorf("UDP answer of a banned server to the pbx: %q, %v", buf[:n], err)
	}
	var tc net.Conn
	pbx.Do(t, func() { tc, err = net.DialTimeout("tcp", server+":7001", 5*time.Second) })
	if err != nil {
		t.Errorf("TCP to a banned server: %v", err)
	} else {
		_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
		if b, err := io.ReadAll(tc); err != nil || string(b) != "hello from a banned server\n" {
			t.Errorf("TCP answer of a banned server: %q, %v", b, err)
		}
		tc.Close()
	}

	// The pbx still hears LAPI (whose address was banned).
	l.Cscli(t, "decisions", "add", "--ip", lateBan, "--duration", "1h", "--reason", "lockout test")
	bridgetest.Eventually(t, 30*time.Second, "a ban made after LAPI's own", func() bool { return has(ourElements(t, mode, pbx), lateBan+"/32") })

	m := metrics(t, pbx, "127.0.0.1:60603")
	for _, want := range []string{
		`crowdsec_apiban_bridge_bouncer_skipped_decisions_total{reason="self"} 1`,
		`crowdsec_apiban_bridge_bouncer_skipped_decisions_total{reason="lapi"} 1`,
		`crowdsec_apiban_bridge_bouncer_skipped_decisions_total{reason="too-wide"} 1`,
		`crowdsec_apiban_bridge_bouncer_skipped_decisions_total{reason="special"} 0`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s:\n%s", want, grepLines(m, "skipped_decisions"))
		}
	}
	out := d.Stop()
	for _, c := range []struct{ reason, value string }{{"self", pbxAddr + "/32"}, {"lapi", lapiAddr + "/32"}, {"too-wide", wideBan}} {
		re := regexp.MustCompile(`(?m)^.*not enforced: ` + regexp.QuoteMeta(c.value) + `.*reason=` + c.reason + `.*$`)
		if n := len(re.FindAllString(out, -1)); n != 1 {
			t.Errorf("%d log lines for the %s decision %s, want 1", n, c.reason, c.value)
		}
	}
	if got := ourObjects(t, mode, pbx); got != "" {
		t.Errorf("objects after stop: %s", got)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for line := range strings.Lines(s) {
		if strings.Contains(line, sub) {
			out = append(out, strings.TrimSpace(line))
		}
	}
	return strings.Join(out, "\n")
}
