package netns

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bouncer"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bouncer/ipset"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bouncer/nftables"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/bridgetest"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/lapitest"
)

// The helper process: the test binary run again with these variables set
// is the bouncer of the "pbx" host, so that the test can kill -9 it.
const (
	envHelper  = "NETNS_BOUNCER_HELPER"
	envNetNS   = "NETNS_BOUNCER_NETNS"
	envLAPI    = "NETNS_BOUNCER_LAPI"
	envKey     = "NETNS_BOUNCER_KEY"
	envAllowed = "NETNS_BOUNCER_ALLOW"
	envMode    = "NETNS_BOUNCER_MODE"
	envNSName  = "NETNS_BOUNCER_NSNAME"
)

func TestMain(m *testing.M) {
	if os.Getenv(envHelper) != "" {
		os.Exit(helper())
	}
	os.Exit(m.Run())
}

// helper runs the bouncer with its nftables backend in the namespace at
// $NETNS_BOUNCER_NETNS until SIGTERM, as the bridge's daemon does.
func helper() int {
	log := logrus.New()
	log.SetLevel(logrus.DebugLevel)
	f, err := os.Open(os.Getenv(envNetNS))
	if err != nil {
		log.Error(err)
		return 1
	}
	defer f.Close()
	backend, err := newBackend(os.Getenv(envMode), int(f.Fd()), os.Getenv(envNSName))
	if err != nil {
		log.Error(err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	b := bouncer.New(backend, bouncer.Options{
		StreamOptions: bouncer.StreamOptions{APIURL: os.Getenv(envLAPI), APIKey: os.Getenv(envKey), UpdateFrequency: time.Second,
			UserAgent: "netns-test/1"},
		Log: log,
		// Usage metrics every second (the config's minimum is a minute),
		// so that the test sees them reach LAPI.
		MetricsInterval: time.Second,
		Allowlist:       []netip.Prefix{netip.MustParsePrefix(os.Getenv(envAllowed))},
	})
	if err := b.Run(ctx); err != nil {
		log.Error(err)
		return 1
	}
	return 0
}

// newBackend is the bouncer's backend for mode, with the default names, in
// the namespace nsName (open at fd).
func newBackend(mode string, fd int, nsName string) (bouncer.Backend, error) {
	if mode == "ipset" {
		return ipset.New(ipset.Options{SetPrefix: ourPrefix, Chain: ourIptablesChain, Hooks: []string{"INPUT"},
			NetNSFd: fd, CommandPrefix: []string{"ip", "netns", "exec", nsName}})
	}
	return nftables.New(nftables.Options{Table: ourTable, SetPrefix: ourPrefix,
		InputChain: ourChain + "-input", Priority: ourPriority, NetNSFd: fd})
}

// pbxHost is the running helper.
type pbxHost struct {
	cmd *exec.Cmd
	out *bytes.Buffer
}

func startPBX(t *testing.T, mode string, pbx *NS, l *lapitest.LAPI, key string) *pbxHost {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envHelper+"=1", envNetNS+"=/run/netns/"+pbx.Name, envMode+"="+mode, envNSName+"="+pbx.Name,
		envLAPI+"="+l.URL, envKey+"="+key, envAllowed+"="+allowed)
	out := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &pbxHost{cmd: cmd, out: out}
	t.Cleanup(func() {
		if h.cmd.ProcessState == nil {
			_ = h.cmd.Process.Kill()
			_ = h.cmd.Wait()
		}
		if t.Failed() {
			t.Logf("bouncer output:\n%s", h.out)
		}
	})
	return h
}

// Addresses: the pbx listens on 203.0.113.1:5060; the attacker sends from
// each of these.
const (
	pbxAddr   = "203.0.113.1"
	banned    = "192.0.2.10"    // Ip decision
	inRange   = "198.51.100.77" // inside a Range decision
	clean     = "203.0.113.2"   // no decision
	shortLong = "192.0.2.20"    // 15 s decision, then a 1 h one
	deleted   = "192.0.2.30"    // decision deleted with cscli
	allowed   = "192.0.2.40/32" // banned but allowlisted
)

// udpProbe sends UDP from attacker addresses to the pbx and reports which
// arrive.
type udpProbe struct {
	t     *testing.T
	conns map[string]*net.UDPConn
	pbx   *UDPListener
	seq   int
}

func newProbe(t *testing.T, pbx, atk *NS, sources ...string) *udpProbe {
	p := &udpProbe{t: t, conns: map[string]*net.UDPConn{}, pbx: pbx.ListenUDP(t, ":5060", false)}
	var err error
	atk.Do(t, func() {
		for _, src := range sources {
			var c *net.UDPConn
			c, err = net.DialUDP("udp4", &net.UDPAddr{IP: net.ParseIP(src)}, &net.UDPAddr{IP: net.ParseIP(pbxAddr), Port: 5060})
			if err != nil {
				return
			}
			p.conns[src] = c
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, c := range p.conns {
			c.Close()
		}
	})
	return p
}

// arrives sends three datagrams from src and reports whether any arrived.
func (p *udpProbe) arrives(src string) bool {
	p.t.Helper()
	p.seq++
	var payloads []string
	for i := range 3 {
		msg := fmt.Sprintf("%s#%d.%d", src, p.seq, i)
		payloads = append(payloads, msg)
		if _, err := p.conns[src].Write([]byte(msg)); err != nil {
			p.t.Fatalf("send from %s: %v", src, err)
		}
	}
	return p.pbx.Arrived(payloads...)
}

func (p *udpProbe) want(src string, arrive bool, why string) {
	p.t.Helper()
	if got := p.arrives(src); got != arrive {
		p.t.Errorf("UDP from %s (%s): arrived %v, want %v", src, why, got, arrive)
	}
}

// ourIpsets matches the names of our ipsets, one pair per origin.
var ourIpsets = regexp.MustCompile(`^` + regexp.QuoteMeta(ourPrefix) + `-[0-9]+-v[46]$`)

// ourElements lists the elements of our sets.
func ourElements(t *testing.T, mode string, pbx *NS) map[netip.Prefix]SetElem {
	t.Helper()
	all := map[netip.Prefix]SetElem{}
	if mode == "ipset" {
		for _, s := range pbx.IpsetNames(t, ourIpsets) {
			elems, _ := pbx.IpsetMembers(t, s)
			for p, e := range elems {
				all[p] = e
			}
		}
		return all
	}
	for _, s := range pbx.NftSetNames(t, "inet", ourTable) {
		elems, _ := pbx.NftSet(t, "inet", ourTable, s)
		for p, e := range elems {
			all[p] = e
		}
	}
	return all
}

// foreignObjects creates crowdsec-firewall-bouncer's objects for the mode
// and returns a function listing them, to compare before and after.
func foreignObjects(t *testing.T, mode string, pbx *NS) func() string {
	t.Helper()
	if mode == "ipset" {
		pbx.Cmd(t, "ipset", "create", "crowdsec-blacklists-cscli", "hash:net", "timeout", "0")
		pbx.Cmd(t, "ipset", "add", "crowdsec-blacklists-cscli", "192.0.2.99", "timeout", "3600")
		pbx.Cmd(t, "iptables", "-w", "-N", "CROWDSEC_CHAIN")
		pbx.Cmd(t, "iptables", "-w", "-A", "CROWDSEC_CHAIN", "-m", "set", "--match-set", "crowdsec-blacklists-cscli", "src", "-j", "DROP")
		pbx.Cmd(t, "iptables", "-w", "-I", "INPUT", "-j", "CROWDSEC_CHAIN")
		return func() string {
			set, _ := pbx.IpsetMembers(t, "crowdsec-blacklists-cscli")
			return fmt.Sprint(len(set), has(set, "192.0.2.99/32"), "\n", pbx.Cmd(t, "iptables", "-w", "-S", "CROWDSEC_CHAIN"),
				strings.Count(pbx.Cmd(t, "iptables", "-w", "-S", "INPUT"), "-j CROWDSEC_CHAIN"))
		}
	}
	pbx.Cmd(t, "nft", "add table ip crowdsec")
	pbx.Cmd(t, "nft", "add set ip crowdsec crowdsec-blacklists-cscli { type ipv4_addr; flags timeout; }")
	pbx.Cmd(t, "nft", "add element ip crowdsec crowdsec-blacklists-cscli { 192.0.2.99 timeout 1h }")
	return func() string { return pbx.NftTable("ip", "crowdsec") }
}

// ourObjects describes our objects, to check there is exactly one set of
// them ("" when there are none).
func ourObjects(t *testing.T, mode string, pbx *NS) string {
	t.Helper()
	if mode == "ipset" {
		sets := strings.Fields(pbx.Cmd(t, "ipset", "list", "-n"))
		var ours []string
		for _, s := range sets {
			if strings.HasPrefix(s, ourPrefix) {
				ours = append(ours, s)
			}
		}
		chain, err := pbx.Try("iptables", "-w", "-S", ourIptablesChain)
		if err != nil {
			chain = "" // no such chain
		}
		jumps := strings.Count(pbx.Cmd(t, "iptables", "-w", "-S", "INPUT"), "-j "+ourIptablesChain)
		if len(ours) == 0 && jumps == 0 && chain == "" {
			return ""
		}
		slices.Sort(ours)
		return fmt.Sprintf("sets %v, %d drop rules, %d jumps", ours, strings.Count(chain, "-j DROP"), jumps)
	}
	n := 0
	for _, tb := range pbx.NftTables(t) {
		if tb == "inet "+ourTable {
			n++
		}
	}
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("%d tables, %d drop rules", n, strings.Count(pbx.NftTable("inet", ourTable), " drop"))
}

// wantDropsByOrigin reads the drop counters as the bouncer's metrics do,
// through a backend of the same names: since the restart (which rebuilt
// the objects, so the counters started from zero), the probes sent 3
// packets from each of cscli's banned addresses (banned, shortLong) and 3
// from inside cscli-import's range, each counted under its origin.
func wantDropsByOrigin(t *testing.T, mode string, pbx *NS) {
	t.Helper()
	f, err := os.Open("/run/netns/" + pbx.Name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	backend, err := newBackend(mode, int(f.Fd()), pbx.Name)
	if err != nil {
		t.Fatal(err)
	}
	defer backend.Close()
	d, err := backend.(bouncer.CounterReader).Dropped(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	cscli, imported := d[bouncer.DropKey{Origin: "cscli", IPType: "ipv4"}], d[bouncer.DropKey{Origin: "cscli-import", IPType: "ipv4"}]
	if cscli.Packets != 6 || imported.Packets != 3 || cscli.Bytes == 0 || imported.Bytes == 0 {
		t.Errorf("drops by origin %+v: want 6 packets of cscli and 3 of cscli-import", d)
	}
}

// wantUsageByOrigin reads what LAPI stored of the bouncer's usage
// metrics, as `cscli metrics show bouncers` shows it: dropped packets and
// bytes under each origin whose addresses the probes sent from (3 packets
// per probe at least; more if the first run's report got out before its
// kill -9).
func wantUsageByOrigin(t *testing.T, l *lapitest.LAPI) {
	t.Helper()
	var last string
	if bridgetest.Poll(20*time.Second, func() bool {
		out := l.BouncerMetrics(t)
		last = string(out)
		var doc struct {
			Bouncers map[string]map[string]map[string]map[string]int64 `json:"bouncers"`
		}
		if err := json.Unmarshal(out, &doc); err != nil {
			t.Fatalf("cscli metrics show bouncers: %v\n%s", err, out)
		}
		ok := len(doc.Bouncers) == 1
		for _, byOrigin := range doc.Bouncers {
			for _, origin := range []string{"cscli", "cscli-import"} {
				d := byOrigin[origin]["dropped"]
				ok = ok && d["packet"] >= 3 && d["byte"] > 0 && byOrigin[origin]["active_decisions"]["ip"] >= 1
			}
		}
		return ok
	}) {
		t.Logf("LAPI's usage metrics: %s", last)
		return
	}
	t.Errorf("LAPI's usage metrics lack drops by origin:\n%s", last)
}

func has(elems map[netip.Prefix]SetElem, p string) bool {
	_, ok := elems[netip.MustParsePrefix(p)]
	return ok
}

// TestBouncerInNamespaces is the pbx/attacker test, in both modes.
func TestBouncerInNamespaces(t *testing.T) {
	Require(t, "nft", "ipset", "iptables")
	for _, mode := range []string{"nftables", "ipset"} {
		t.Run(mode, func(t *testing.T) { testBouncer(t, mode) })
	}
}

var wantObjects = map[string]string{
	// cscli's IPv4 addresses, cscli-import's IPv4 range.
	"nftables": "1 tables, 2 drop rules",
	// After the restart over the killed run's slots 0 and 1: slot 2
	// cscli, slot 3 cscli-import (byte order), and the registry.
	"ipset": strings.ReplaceAll("sets [P-2-v4 P-2-v6 P-3-v4 P-3-v6 P-origins], 2 drop rules, 1 jumps", "P", ourPrefix),
}

func testBouncer(t *testing.T, mode string) {
	l := lapitest.Start(t)
	const key = "netns-bouncer-key-5f2e"
	l.Cscli(t, "bouncers", "add", "apiban-bridge-fw", "-k", key)

	pbx, atk := New(t, "pbx"), New(t, "atk")
	Link(t, pbx, "vpbx", atk, "vatk")
	pbx.Cmd(t, "ip", "addr", "add", pbxAddr+"/24", "dev", "vpbx")
	for _, r := range []string{"192.0.2.0/24", "198.51.100.0/24"} {
		pbx.Cmd(t, "ip", "route", "add", r, "dev", "vpbx")
	}
	atk.Cmd(t, "ip", "addr", "add", clean+"/24", "dev", "vatk")
	srcs := []string{banned, inRange, shortLong, deleted, strings.TrimSuffix(allowed, "/32")}
	for _, a := range srcs {
		atk.Cmd(t, "ip", "addr", "add", a+"/32", "dev", "vatk")
	}
	probe := newProbe(t, pbx, atk, append(srcs, clean)...)
	for _, src := range append(srcs, clean) {
		probe.want(src, true, "before any decision")
	}

	// crowdsec-firewall-bouncer's objects, which must stay untouched.
	listForeign := foreignObjects(t, mode, pbx)
	foreign := listForeign()

	// The range comes from a second origin (cscli-import), so that drops
	// are counted under two origins.
	importFile := t.TempDir() + "/range.json"
	if err := os.WriteFile(importFile, []byte(`[{"value":"198.51.100.0/24","scope":"Range","duration":"1h","type":"ban","reason":"netns test"}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	l.Cscli(t, "decisions", "import", "-i", importFile, "--format", "json")
	for _, args := range [][]string{
		{"--ip", banned, "--duration", "1h"},
		{"--ip", shortLong, "--duration", "15s"},
		{"--ip", deleted, "--duration", "1h"},
		{"--ip", strings.TrimSuffix(allowed, "/32"), "--duration", "1h"},
	} {
		l.Cscli(t, append([]string{"decisions", "add", "--reason", "netns test"}, args...)...)
	}
	shortAdded := time.Now()
	host := startPBX(t, mode, pbx, l, key)
	bridgetest.Eventually(t, 30*time.Second, "the first decisions in the kernel", func() bool {
		e := ourElements(t, mode, pbx)
		return has(e, banned+"/32") && has(e, "198.51.100.0/24") && has(e, shortLong+"/32") && has(e, deleted+"/32")
	})
	if has(ourElements(t, mode, pbx), allowed) {
		t.Error("allowlisted address in the kernel set")
	}
	if after := listForeign(); after != foreign {
		t.Errorf("crowdsec-firewall-bouncer objects changed at start:\n%s\nwas:\n%s", after, foreign)
	}

	probe.want(banned, false, "banned IP")
	probe.want(inRange, false, "inside a banned range")
	probe.want(clean, true, "clean IP")
	probe.want(strings.TrimSuffix(allowed, "/32"), true, "allowlisted IP with a ban")

	// A longer decision for an IP already in the set refreshes its timeout.
	l.Cscli(t, "decisions", "add", "--ip", shortLong, "--duration", "1h", "--reason", "netns test")
	bridgetest.Eventually(t, 15*time.Second, "the longer decision's timeout", func() bool {
		return ourElements(t, mode, pbx)[netip.MustParsePrefix(shortLong+"/32")].Expires > 30*time.Minute
	})

	// A deleted decision stops being enforced.
	l.Cscli(t, "decisions", "delete", "--ip", deleted)
	bridgetest.Eventually(t, 15*time.Second, "the deleted decision to leave the set", func() bool {
		return !has(ourElements(t, mode, pbx), deleted+"/32")
	})
	probe.want(deleted, true, "decision deleted")

	// kill -9: the objects stay; the next start replaces them.
	if err := host.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = host.cmd.Wait()
	if !has(ourElements(t, mode, pbx), banned+"/32") {
		t.Error("objects gone after kill -9 (nothing should have removed them)")
	}
	host = startPBX(t, mode, pbx, l, key)
	time.Sleep(3 * time.Second)
	bridgetest.Eventually(t, 30*time.Second, "the restarted bouncer's sets", func() bool {
		e := ourElements(t, mode, pbx)
		return has(e, banned+"/32") && has(e, "198.51.100.0/24") && has(e, shortLong+"/32")
	})
	if got := ourObjects(t, mode, pbx); got != wantObjects[mode] {
		t.Errorf("objects after restart: %s, want %s", got, wantObjects[mode])
	}

	// Past the short decision's end the longer one still holds.
	time.Sleep(time.Until(shortAdded.Add(20 * time.Second)))
	probe.want(shortLong, false, "short decision over, longer one active")
	probe.want(banned, false, "banned IP after restart")
	probe.want(inRange, false, "range after restart")
	probe.want(deleted, true, "deleted decision after restart")
	probe.want(clean, true, "clean IP after restart")
	wantDropsByOrigin(t, mode, pbx)
	wantUsageByOrigin(t, l)

	// Clean stop: our table goes, theirs stays.
	if err := host.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := host.cmd.Wait(); err != nil {
		t.Errorf("bouncer exit: %v", err)
	}
	if got := ourObjects(t, mode, pbx); got != "" {
		t.Errorf("objects after stop: %s, want none", got)
	}
	if after := listForeign(); after != foreign {
		t.Errorf("crowdsec-firewall-bouncer objects changed:\n%s\nwas:\n%s", after, foreign)
	}
	probe.want(banned, true, "bouncer stopped")
}
