package netns

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/apibansim"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/bridgetest"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/lapitest"
)

// Addresses of the coexistence test. The attacker sends from the IPv4
// ones; the IPv6 ban is only checked in the sets.
const (
	stockBannedCscli  = "192.0.2.50"   // cscli decisions add: origin cscli
	stockBannedImport = "192.0.2.51"   // cscli decisions import: origin cscli-import
	stockBannedV6     = "2001:db8::50" // cscli decisions add
	stockClean        = "203.0.113.2"  // no decision
)

// What crowdsec-firewall-bouncer 0.0.25 creates with Debian's shipped
// configuration (newer upstream releases name them differently: one set
// per origin, CROWDSEC_CHAIN...). Checked, so that docs/bouncer.md stays
// true to the package.
var stockWant = map[string][]string{
	"nftables": {
		"table ip crowdsec",
		"set ip crowdsec crowdsec-blacklists (ipv4_addr, flags timeout)",
		"chain ip crowdsec crowdsec-chain (hook input, priority 0, policy accept)",
		"table ip6 crowdsec6",
		"set ip6 crowdsec6 crowdsec6-blacklists (ipv6_addr, flags timeout)",
		"chain ip6 crowdsec6 crowdsec6-chain (hook input, priority 0, policy accept)",
	},
	"iptables": {
		"ipset crowdsec-blacklists (hash:net)",
		"ipset crowdsec6-blacklists (hash:net)",
		"iptables -A INPUT -m set --match-set crowdsec-blacklists src -j DROP",
		"ip6tables -A INPUT -m set --match-set crowdsec6-blacklists src -j DROP",
	},
}

// stockDetected is what the bridge's start-up warning must name in each
// mode (bouncer/detect.go).
var stockDetected = map[string][]string{
	"nftables": {"nftables table crowdsec,", "nftables table crowdsec6"},
	"iptables": {"ipset crowdsec-blacklists,", "ipset crowdsec6-blacklists", "iptables INPUT rule matching crowdsec-blacklists",
		"ip6tables INPUT rule matching crowdsec6-blacklists"},
}

// TestStockFirewallBouncer runs Debian bookworm's real
// crowdsec-firewall-bouncer (0.0.25, downloaded and unpacked, never
// installed) and the bridge's embedded bouncer side by side in one
// namespace, in the stock bouncer's nftables mode with our nftables mode
// and in its iptables (ipset) mode with our ipset mode. Through our
// start, kill -9, restart and SIGTERM, the stock bouncer's objects stay
// exactly as they were, traffic from banned addresses is dropped and clean
// traffic passes, and after SIGTERM the stock bouncer alone still drops.
func TestStockFirewallBouncer(t *testing.T) {
	Require(t, "nft", "ipset", "iptables", "ip6tables")
	for _, tool := range []string{"apt-get", "dpkg-deb"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: the test downloads Debian's crowdsec-firewall-bouncer with it", tool)
		}
	}
	pkg, err := DebianStockBouncer()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("crowdsec-firewall-bouncer %s unpacked in %s", pkg.Version, pkg.Root)
	bin, err := bridgetest.Build(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []struct{ stock, ours string }{{"nftables", "nftables"}, {"iptables", "ipset"}} {
		t.Run(m.stock, func(t *testing.T) { testStock(t, pkg, bin, m.stock, m.ours) })
	}
}

func testStock(t *testing.T, pkg StockPackage, bin, stockMode, ourMode string) {
	const stockKey, ourKey = "stock-fw-bouncer-key-3c1d", "apiban-fw-bouncer-key-8e2b"
	const password, apibanKey = "stock-machine-pw-61", "stock-apiban-key-90"
	l := lapitest.Start(t)
	l.Cscli(t, "bouncers", "add", "crowdsec-firewall-bouncer", "-k", stockKey)
	l.Cscli(t, "bouncers", "add", "apiban-bridge-fw", "-k", ourKey)
	l.AddMachine(t, "crowdsec-apiban-bridge", password)
	for _, ip := range []string{stockBannedCscli, stockBannedV6} {
		l.Cscli(t, "decisions", "add", "--ip", ip, "--duration", "1h", "--reason", "stock coexistence")
	}
	dir := t.TempDir()
	values := filepath.Join(dir, "import.txt")
	if err := os.WriteFile(values, []byte(stockBannedImport+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	l.Cscli(t, "decisions", "import", "-i", values, "--format", "values", "--duration", "1h")
	if ds := l.Decisions(t, "cscli-import"); len(ds) != 1 || ds[0].Value != stockBannedImport {
		t.Fatalf("cscli-import decisions: %+v", ds)
	}
	if ds := l.Decisions(t, "cscli"); len(ds) != 2 {
		t.Fatalf("cscli decisions: %+v", ds)
	}
	bannedV4 := []string{stockBannedCscli, stockBannedImport}
	allBanned := append(slices.Clone(bannedV4), stockBannedV6)

	pbx, atk := New(t, "pbx"), New(t, "atk")
	Link(t, pbx, "vpbx", atk, "vatk")
	pbx.Cmd(t, "ip", "addr", "add", pbxAddr+"/24", "dev", "vpbx")
	pbx.Cmd(t, "ip", "route", "add", "192.0.2.0/24", "dev", "vpbx")
	atk.Cmd(t, "ip", "addr", "add", stockClean+"/24", "dev", "vatk")
	for _, a := range bannedV4 {
		atk.Cmd(t, "ip", "addr", "add", a+"/32", "dev", "vatk")
	}
	probe := newProbe(t, pbx, atk, append(slices.Clone(bannedV4), stockClean)...)
	for _, src := range append(slices.Clone(bannedV4), stockClean) {
		probe.want(src, true, "before any bouncer")
	}
	traffic := func(why string) {
		t.Helper()
		for _, src := range bannedV4 {
			probe.want(src, false, "banned, "+why)
		}
		probe.want(stockClean, true, "clean, "+why)
	}

	// LAPI listens on the host's loopback; both bouncers reach it through
	// a relay on the namespace's loopback.
	u, err := url.Parse(l.URL)
	if err != nil {
		t.Fatal(err)
	}
	lapiURL := "http://" + pbx.Forward(t, "127.0.0.1:0", u.Host) + "/"

	// The stock bouncer, with the package's configuration file and only
	// what a test must change overridden.
	stockCfg := stockConfig(t, pkg, dir, map[string]string{
		"mode": stockMode, "api_url": lapiURL, "api_key": stockKey,
		"log_mode": "stdout", "log_dir": dir, "pid_dir": dir,
	})
	stock := startProc(t, "crowdsec-firewall-bouncer", "ip", "netns", "exec", pbx.Name, pkg.Binary, "-c", stockCfg)
	bridgetest.Eventually(t, 30*time.Second, "the stock bouncer's sets to hold the decisions", func() bool {
		stock.running(t)
		return holds(stockElements(t, stockMode, pbx), allBanned...)
	})
	traffic("only the stock bouncer runs")
	watch := newStockWatch(t, stockMode, pbx)
	if got := watch.base.objects; !slices.Equal(got, stockWant[stockMode]) {
		t.Errorf("the stock bouncer's objects:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(stockWant[stockMode], "\n"))
	}

	// Our binary: the bridge with its bouncer, every origin, its own key.
	simLn := pbx.ListenTCP(t, "127.0.0.1:0")
	sim := apibansim.New(apibansim.Options{Key: apibanKey, MaxRequests: apibansim.Unlimited, Listener: simLn})
	t.Cleanup(sim.Close)
	ourCfg := bridgetest.Config{
		APIBAN: bridgetest.APIBAN{APIKey: apibanKey, URL: "http://" + simLn.Addr().String(),
			MaxRequests: new(0), PollInterval: 10 * time.Second},
		CrowdSec:   bridgetest.CrowdSec{LAPIURL: lapiURL, Password: password},
		StateFile:  filepath.Join(dir, "state.json"),
		Prometheus: bridgetest.Prometheus{Enabled: new(false)},
		Bouncer:    bridgetest.Bouncer{Enabled: new(true), APIKey: ourKey, UpdateFrequency: time.Second, Mode: ourMode},
	}.Write(t, dir)
	secrets := []string{stockKey, ourKey, password, apibanKey}
	var firstShape string
	procs := []*proc{stock}
	startOurs := func() *proc {
		t.Helper()
		p := startProc(t, "crowdsec-apiban-bridge", "ip", "netns", "exec", pbx.Name, bin, "-c", ourCfg)
		procs = append(procs, p)
		bridgetest.Eventually(t, 60*time.Second, "our objects to hold the decisions", func() bool {
			p.running(t)
			o := ours(t, ourMode, pbx, watch.ipsets)
			return o.present && strings.Contains(p.log.String(), "sets loaded") && holds(o.elems, allBanned...)
		})
		// Exactly one set of objects: after a restart over leftovers, the
		// same ones as after the first start (same decisions).
		o := ours(t, ourMode, pbx, watch.ipsets)
		t.Logf("ours: %s", o.shape)
		if ourMode == "ipset" && !o.oneJump {
			t.Errorf("our objects: %s, want one jump to APIBAN_BRIDGE from INPUT per family", o.shape)
		}
		if firstShape == "" {
			firstShape = o.shape
		} else if o.shape != firstShape {
			t.Errorf("our objects after the restart: %s\nafter the first start: %s", o.shape, firstShape)
		}
		log := p.log.String()
		line := grepLine(log, "crowdsec-firewall-bouncer is present (")
		if line == "" {
			t.Errorf("our binary did not warn about the stock bouncer")
		}
		for _, want := range stockDetected[stockMode] {
			if !strings.Contains(line, want) {
				t.Errorf("the warning does not name %q: %s", want, line)
			}
		}
		t.Logf("our warning: %s", line)
		return p
	}

	p := startOurs()
	watch.check("with our bouncer running")
	traffic("both bouncers run")

	p.signal(t, syscall.SIGKILL)
	p.wait(t, 10*time.Second)
	if o := ours(t, ourMode, pbx, watch.ipsets); !o.present || !holds(o.elems, allBanned...) {
		t.Errorf("our objects after kill -9: %s (nothing should have removed them)", o.shape)
	}
	watch.check("after kill -9 of our binary")

	p = startOurs()
	watch.check("after our restart over the leftovers")
	traffic("both bouncers run, ours restarted")

	p.signal(t, syscall.SIGTERM)
	if err := p.wait(t, 20*time.Second); err != nil {
		t.Errorf("our exit after SIGTERM: %v", err)
	}
	if o := ours(t, ourMode, pbx, watch.ipsets); !o.gone {
		t.Errorf("our objects after SIGTERM: %s, want none", o.shape)
	}
	watch.check("after our SIGTERM")
	if !holds(stockElements(t, stockMode, pbx), allBanned...) {
		t.Errorf("the stock bouncer's sets lost decisions: %v", stockElements(t, stockMode, pbx))
	}
	before := watch.take().drops
	traffic("only the stock bouncer runs again")
	if after := watch.take().drops; after <= before {
		t.Errorf("the stock bouncer's drop rules counted %d packets, then %d: the banned probes were not dropped by them", before, after)
	}
	if !strings.Contains(p.log.String(), "objects removed") {
		t.Errorf("our log lacks the removal")
	}
	for _, o := range procs {
		own := secrets
		if o == stock { // the stock bouncer may show its own key; "" is never checked
			own = slices.Clone(secrets)
			own[slices.Index(own, stockKey)] = ""
		}
		if !bridgetest.AssertNoSecrets(t, o.log.String(), own...) {
			t.Logf("the secret is in %s's output", o.name)
		}
	}

	// The stock bouncer's own shutdown (with daemonize: true, as shipped,
	// SIGTERM removes its objects; that is its business, not checked).
	stock.signal(t, syscall.SIGTERM)
	if err := stock.wait(t, 20*time.Second); err != nil {
		t.Logf("crowdsec-firewall-bouncer exit: %v", err)
	}
}

// stockConfig writes the package's crowdsec-firewall-bouncer.yaml with
// the given top-level keys replaced; each must be in the shipped file.
func stockConfig(t *testing.T, pkg StockPackage, dir string, set map[string]string) string {
	t.Helper()
	b, err := os.ReadFile(pkg.Config)
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(b)
	for k, v := range set {
		re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(k) + `:.*$`)
		if n := len(re.FindAllString(cfg, -1)); n != 1 {
			t.Fatalf("the shipped configuration has %d top-level %q keys, want 1", n, k)
		}
		cfg = re.ReplaceAllLiteralString(cfg, k+": "+v)
	}
	path := filepath.Join(dir, "crowdsec-firewall-bouncer.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// stockElements lists the members of the stock bouncer's sets (0.0.25's
// names, from its shipped configuration).
func stockElements(t *testing.T, mode string, pbx *NS) map[netip.Prefix]SetElem {
	t.Helper()
	all := map[netip.Prefix]SetElem{}
	var sets []map[netip.Prefix]SetElem
	if mode == "nftables" {
		v4, _ := pbx.NftSet(t, "ip", "crowdsec", "crowdsec-blacklists")
		v6, _ := pbx.NftSet(t, "ip6", "crowdsec6", "crowdsec6-blacklists")
		sets = append(sets, v4, v6)
	} else {
		v4, _ := pbx.IpsetMembers(t, "crowdsec-blacklists")
		v6, _ := pbx.IpsetMembers(t, "crowdsec6-blacklists")
		sets = append(sets, v4, v6)
	}
	for _, s := range sets {
		for p, e := range s {
			all[p] = e
		}
	}
	return all
}

func holds(elems map[netip.Prefix]SetElem, addrs ...string) bool {
	for _, a := range addrs {
		ip := netip.MustParseAddr(a)
		if _, ok := elems[netip.PrefixFrom(ip, ip.BitLen())]; !ok {
			return false
		}
	}
	return true
}

// stockState is one snapshot of the stock bouncer's objects.
//
// "Untouched" means: the same objects (nftables tables other than ours
// with their sets, chains and rules, including the kernel handles, which
// change if an object is deleted and created again; or the ipsets that
// existed before ours started, with their type, header and references, and
// every iptables/ip6tables rule that is not in or jumping to our chain),
// holding the same elements with the same configured timeouts. Left out,
// because the kernel changes them on its own: the time left before each
// element expires (it must go down with the clock: an element with more
// time left was added again), rule counters (they may only grow: a rule
// deleted and added again restarts from zero), and an ipset's memory size.
type stockState struct {
	objects []string                 // what exists, for the expected list
	canon   string                   // everything compared exactly
	expires map[string]time.Duration // element -> time left
	drops   int64                    // packets counted by the stock rules
	at      time.Time                // when it was taken
}

type stockWatch struct {
	t      *testing.T
	mode   string
	pbx    *NS
	ipsets []string // the stock bouncer's ipsets (iptables mode)
	base   stockState
}

// newStockWatch takes the reference snapshot, before our binary starts.
func newStockWatch(t *testing.T, mode string, pbx *NS) *stockWatch {
	t.Helper()
	w := &stockWatch{t: t, mode: mode, pbx: pbx}
	if mode == "iptables" {
		w.ipsets = strings.Fields(pbx.Cmd(t, "ipset", "list", "-n"))
		slices.Sort(w.ipsets)
	}
	w.base = w.take()
	return w
}

// check fails the test if the stock bouncer's objects changed.
func (w *stockWatch) check(when string) {
	w.t.Helper()
	now := w.take()
	if now.canon != w.base.canon {
		w.t.Errorf("the stock bouncer's objects changed %s:\n%s\nwere:\n%s", when, now.canon, w.base.canon)
		return
	}
	if now.drops < w.base.drops {
		w.t.Errorf("the stock rules' counters went down %s, from %d to %d packets (rules replaced)", when, w.base.drops, now.drops)
	}
	// Times are whole seconds: allow 2 s of rounding.
	elapsed := now.at.Sub(w.base.at)
	for k, before := range w.base.expires {
		if left, ok := now.expires[k]; !ok || left > before-elapsed+2*time.Second {
			w.t.Errorf("stock element %s %s: %s left, was %s %s earlier (added again)", k, when, left, before, elapsed.Round(time.Second))
		}
	}
}

func (w *stockWatch) take() stockState {
	w.t.Helper()
	s := stockState{expires: map[string]time.Duration{}, at: time.Now()}
	var parts []string
	if w.mode == "nftables" {
		for _, tb := range w.pbx.NftTables(w.t) {
			if tb == "inet "+ourTable {
				continue // ours
			}
			family, name, _ := strings.Cut(tb, " ")
			parts = append(parts, canonNft(w.t, w.pbx.Cmd(w.t, "nft", "-j", "list", "table", family, name), &s))
		}
		s.canon = strings.Join(parts, "\n")
		return s
	}
	for _, name := range w.ipsets {
		parts = append(parts, canonIpset(w.t, w.pbx, name, &s))
	}
	for _, tool := range []string{"iptables", "ip6tables"} {
		for _, line := range strings.Split(w.pbx.Cmd(w.t, tool, "-w", "-S"), "\n") {
			if line == "" || strings.Contains(line, ourIptablesChain) {
				continue
			}
			parts = append(parts, tool+" "+line)
			if strings.Contains(line, "crowdsec") {
				s.objects = append(s.objects, tool+" "+line)
			}
		}
		for _, line := range strings.Split(w.pbx.Cmd(w.t, tool, "-w", "-v", "-S"), "\n") {
			if f := strings.Fields(line); strings.Contains(line, "crowdsec") && slices.Contains(f, "-c") {
				i := slices.Index(f, "-c")
				n, _ := strconv.ParseInt(f[i+1], 10, 64)
				s.drops += n
			}
		}
	}
	s.canon = strings.Join(parts, "\n")
	return s
}

// canonNft turns `nft -j list table` into a stable text: no metainfo,
// sorted elements without "expires" (recorded in s), counters blanked
// (their packets added to s.drops).
func canonNft(t *testing.T, out string, s *stockState) string {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(out))
	dec.UseNumber()
	var doc struct {
		Nftables []map[string]any `json:"nftables"`
	}
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("nft -j: %v\n%s", err, out)
	}
	var lines []string
	for _, obj := range doc.Nftables {
		if _, ok := obj["metainfo"]; ok {
			continue
		}
		if tb, ok := obj["table"].(map[string]any); ok {
			s.objects = append(s.objects, fmt.Sprintf("table %v %v", tb["family"], tb["name"]))
		}
		if set, ok := obj["set"].(map[string]any); ok {
			s.objects = append(s.objects, fmt.Sprintf("set %v %v %v (%v, flags %v)", set["family"], set["table"], set["name"], set["type"], joinAny(set["flags"])))
			elems, _ := set["elem"].([]any)
			var keys []string
			for _, e := range elems {
				if w, ok := e.(map[string]any); ok {
					if in, ok := w["elem"].(map[string]any); ok {
						if x, ok := in["expires"].(json.Number); ok {
							secs, _ := x.Int64()
							s.expires[fmt.Sprintf("%v %s", set["name"], jsonText(in["val"]))] = time.Duration(secs) * time.Second
							delete(in, "expires")
						}
					}
				}
				keys = append(keys, jsonText(e))
			}
			slices.Sort(keys)
			if elems != nil {
				set["elem"] = keys
			}
		}
		if ch, ok := obj["chain"].(map[string]any); ok {
			s.objects = append(s.objects, fmt.Sprintf("chain %v %v %v (hook %v, priority %v, policy %v)", ch["family"], ch["table"], ch["name"], ch["hook"], ch["prio"], ch["policy"]))
		}
		if r, ok := obj["rule"].(map[string]any); ok {
			exprs, _ := r["expr"].([]any)
			for _, e := range exprs {
				if m, ok := e.(map[string]any); ok {
					if c, ok := m["counter"].(map[string]any); ok {
						if n, ok := c["packets"].(json.Number); ok {
							v, _ := n.Int64()
							s.drops += v
						}
						m["counter"] = "blanked"
					}
				}
			}
		}
		lines = append(lines, jsonText(obj))
	}
	return strings.Join(lines, "\n")
}

// canonIpset describes one ipset without its memory size and members'
// time left (recorded in s).
func canonIpset(t *testing.T, pbx *NS, name string, s *stockState) string {
	t.Helper()
	out, err := pbx.Try("ipset", "list", name)
	if err != nil {
		return "ipset " + name + ": missing"
	}
	head, members, _ := strings.Cut(out, "Members:\n")
	var kept []string
	for _, line := range strings.Split(head, "\n") {
		if line != "" && !strings.HasPrefix(line, "Size in memory:") {
			kept = append(kept, line)
		}
		if typ, ok := strings.CutPrefix(line, "Type: "); ok {
			s.objects = append(s.objects, fmt.Sprintf("ipset %s (%s)", name, typ))
		}
	}
	var values []string
	for _, line := range strings.Split(strings.TrimSpace(members), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		values = append(values, f[0])
		if len(f) >= 3 && f[1] == "timeout" {
			secs, _ := strconv.ParseInt(f[2], 10, 64)
			s.expires[name+" "+f[0]] = time.Duration(secs) * time.Second
		}
	}
	slices.Sort(values)
	return strings.Join(kept, "\n") + "\nMembers: " + strings.Join(values, " ")
}

func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func joinAny(v any) string {
	l, _ := v.([]any)
	var s []string
	for _, x := range l {
		s = append(s, fmt.Sprint(x))
	}
	return strings.Join(s, ",")
}

// ourState describes our objects, found by our table and chain names only
// (not by set names): the elements of every set in table inet
// apiban_bridge, or of every ipset that chain APIBAN_BRIDGE matches.
type ourState struct {
	present bool   // our table or chain exists, with drop rules
	oneJump bool   // ipset mode: INPUT jumps to our chain once per family
	gone    bool   // nothing of ours left
	shape   string // our objects' names and rule counts, without elements
	elems   map[netip.Prefix]SetElem
}

var matchSet = regexp.MustCompile(`--match-set (\S+) src`)

func ours(t *testing.T, mode string, pbx *NS, stockSets []string) ourState {
	t.Helper()
	o := ourState{elems: map[netip.Prefix]SetElem{}}
	if mode == "nftables" {
		out, err := pbx.Try("nft", "-j", "list", "table", "inet", ourTable)
		if err != nil {
			o.gone, o.shape = true, "no table inet "+ourTable
			return o
		}
		var doc struct {
			Nftables []map[string]json.RawMessage `json:"nftables"`
		}
		if err := json.Unmarshal([]byte(out), &doc); err != nil {
			t.Fatalf("nft -j: %v\n%s", err, out)
		}
		var sets, chains []string
		drops := 0
		for _, obj := range doc.Nftables {
			var named struct {
				Name string            `json:"name"`
				Elem []json.RawMessage `json:"elem"`
			}
			if raw, ok := obj["set"]; ok {
				if err := json.Unmarshal(raw, &named); err != nil {
					t.Fatal(err)
				}
				sets = append(sets, named.Name)
				for _, e := range named.Elem {
					el := parseElem(t, e)
					o.elems[el.Prefix] = el
				}
			}
			if raw, ok := obj["chain"]; ok {
				if err := json.Unmarshal(raw, &named); err != nil {
					t.Fatal(err)
				}
				chains = append(chains, named.Name)
			}
			if raw, ok := obj["rule"]; ok && strings.Contains(string(raw), `"drop"`) {
				drops++
			}
		}
		slices.Sort(sets)
		slices.Sort(chains)
		o.present = drops > 0
		o.shape = fmt.Sprintf("table inet %s: sets %v, chains %v, %d drop rules", ourTable, sets, chains, drops)
		return o
	}
	var referenced []string
	jumps, chains := map[string]int{}, 0
	for _, tool := range []string{"iptables", "ip6tables"} {
		if chain, err := pbx.Try(tool, "-w", "-S", ourIptablesChain); err == nil {
			chains++
			for _, m := range matchSet.FindAllStringSubmatch(chain, -1) {
				referenced = append(referenced, m[1])
			}
		}
		jumps[tool] = strings.Count(pbx.Cmd(t, tool, "-w", "-S", "INPUT"), "-j "+ourIptablesChain)
	}
	var extra []string
	for _, s := range strings.Fields(pbx.Cmd(t, "ipset", "list", "-n")) {
		if !slices.Contains(stockSets, s) {
			extra = append(extra, s)
		}
	}
	for _, s := range referenced {
		members, _ := pbx.IpsetMembers(t, s)
		for p, e := range members {
			o.elems[p] = e
		}
	}
	slices.Sort(referenced)
	slices.Sort(extra)
	o.present = chains > 0 && len(referenced) > 0
	o.oneJump = jumps["iptables"] == 1 && jumps["ip6tables"] == 1
	o.gone = chains == 0 && jumps["iptables"] == 0 && jumps["ip6tables"] == 0 && len(extra) == 0
	// A full load builds a new generation of sets under slot numbers not
	// in use, so a restart renames them: compare the shape, not numbers.
	o.shape = fmt.Sprintf("chain %s in %d of iptables/ip6tables, INPUT jumps %v, matching ipsets %v, ipsets not the stock bouncer's %v",
		ourIptablesChain, chains, jumps, anySlot(referenced), anySlot(extra))
	return o
}

var slotNumber = regexp.MustCompile(`-[0-9]+-v([46])$`)

// anySlot writes our ipsets' slot numbers as N.
func anySlot(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = slotNumber.ReplaceAllString(n, "-N-v$1")
	}
	return out
}

func grepLine(log, substr string) string {
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, substr) {
			return line
		}
	}
	return ""
}

// proc is a process of the test (either bouncer) in the namespace: `ip
// netns exec` execs the binary, so signals reach it directly.
type proc struct {
	name   string
	cmd    *exec.Cmd
	log    *bridgetest.Buffer
	done   chan error
	exited bool
	err    error
}

func startProc(t *testing.T, name string, argv ...string) *proc {
	t.Helper()
	p := &proc{name: name, log: &bridgetest.Buffer{}, done: make(chan error, 1)}
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if !p.exited {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() || os.Getenv("SHOW") != "" {
			t.Logf("%s output:\n%s", p.name, p.log.String())
		}
	})
	return p
}

// running fails the test if the process has exited.
func (p *proc) running(t *testing.T) {
	t.Helper()
	if p.exited {
		t.Fatalf("%s exited (%v)", p.name, p.err)
	}
	select {
	case p.err = <-p.done:
		p.exited = true
		t.Fatalf("%s exited (%v):\n%s", p.name, p.err, p.log.String())
	default:
	}
}

func (p *proc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("%s: %v", p.name, err)
	}
}

// wait waits for the exit (failing the test after limit) and returns its
// error.
func (p *proc) wait(t *testing.T, limit time.Duration) error {
	t.Helper()
	if p.exited {
		return p.err
	}
	select {
	case p.err = <-p.done:
		p.exited = true
		return p.err
	case <-time.After(limit):
		t.Fatalf("%s still runs %s after the signal", p.name, limit)
		return nil
	}
}
