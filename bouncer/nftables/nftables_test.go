package nftables

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/nftables"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bouncer"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/netns"
)

func TestLastAddr(t *testing.T) {
	for in, want := range map[string]string{
		"198.51.100.0/24": "198.51.100.255",
		"10.0.0.0/7":      "11.255.255.255",
		"192.0.2.8/29":    "192.0.2.15",
		"0.0.0.0/0":       "255.255.255.255",
		"2001:db8::/32":   "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff",
		"2001:db8::/63":   "2001:db8:0:1:ffff:ffff:ffff:ffff",
	} {
		if got := lastAddr(netip.MustParsePrefix(in)).String(); got != want {
			t.Errorf("lastAddr(%s) = %s, want %s", in, got, want)
		}
	}
}

func encodeOne(p netip.Prefix, timeout time.Duration) []nftables.SetElement {
	els, _ := encode(nil, nil, p, timeout)
	return els
}

func TestEncode(t *testing.T) {
	els := encodeOne(netip.MustParsePrefix("198.51.100.0/24"), time.Minute)
	if len(els) != 2 || netip.AddrFrom4([4]byte(els[1].Key)).String() != "198.51.100.0" && !els[1].IntervalEnd {
		t.Fatalf("range: %+v", els)
	}
	if got := netip.AddrFrom4([4]byte(els[1].Key)).String(); got != "198.51.101.0" || !els[1].IntervalEnd {
		t.Errorf("range end %s (interval end %v), want 198.51.101.0", got, els[1].IntervalEnd)
	}
	if top := encodeOne(netip.MustParsePrefix("255.255.255.0/24"), time.Minute); len(top) != 1 {
		t.Errorf("range at the top of the space: %d elements, want 1 (no end)", len(top))
	}
	if one := encodeOne(netip.MustParsePrefix("192.0.2.1/32"), time.Minute); len(one) != 1 || one[0].IntervalEnd {
		t.Errorf("single address: %+v", one)
	}
}

func TestNewRequiresNames(t *testing.T) {
	if _, err := New(Options{Table: "t", SetPrefix: "s"}); err == nil {
		t.Error("no error without a chain")
	}
}

const (
	tbl    = "apiban_bridge"
	prefix = "apiban-bridge"
)

func newBackend(t *testing.T, ns *netns.NS) *Backend {
	t.Helper()
	b, err := New(Options{Table: tbl, SetPrefix: prefix, InputChain: "apiban-bridge-input",
		ForwardChain: "apiban-bridge-forward", Priority: -10, NetNSFd: ns.Fd()})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// el is an element of origin apiban.
func el(p string, d time.Duration) bouncer.Element { return elo("apiban", p, d) }

func elo(origin, p string, d time.Duration) bouncer.Element {
	return bouncer.Element{Prefix: netip.MustParsePrefix(p), Timeout: d, Origin: origin}
}

func del(origin, p string) bouncer.Element {
	return bouncer.Element{Prefix: netip.MustParsePrefix(p), Origin: origin}
}

// kernelSets returns every element of every set in our table, by prefix.
func kernelSets(t *testing.T, ns *netns.NS, b *Backend) map[netip.Prefix]netns.SetElem {
	t.Helper()
	all := map[netip.Prefix]netns.SetElem{}
	for p, e := range kernelElements(t, ns, b) {
		all[p] = e.SetElem
	}
	return all
}

type kernelElem struct {
	netns.SetElem
	set string
}

// kernelElements returns every element of our table with its set's name,
// and fails if an element is in two sets.
func kernelElements(t *testing.T, ns *netns.NS, b *Backend) map[netip.Prefix]kernelElem {
	t.Helper()
	c, err := b.conn()
	if err != nil {
		t.Fatal(err)
	}
	sets, err := c.GetSets(b.table)
	if err != nil {
		t.Fatal(err)
	}
	all := map[netip.Prefix]kernelElem{}
	for _, s := range sets {
		elems, ok := ns.NftSet(t, "inet", tbl, s.Name)
		if !ok {
			t.Fatalf("set %s missing", s.Name)
		}
		for p, e := range elems {
			if other, twice := all[p]; twice {
				t.Errorf("%s in %s and in %s", p, other.set, s.Name)
			}
			all[p] = kernelElem{e, s.Name}
		}
	}
	return all
}

func wantPrefixes(t *testing.T, got map[netip.Prefix]netns.SetElem, want ...string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("kernel holds %d elements %v, want %v", len(got), got, want)
	}
	for _, w := range want {
		if _, ok := got[netip.MustParsePrefix(w)]; !ok {
			t.Errorf("kernel lacks %s (holds %v)", w, got)
		}
	}
}

func TestKernelReconcileApplyCleanup(t *testing.T) {
	netns.Require(t, "nft")
	ns := netns.New(t, "nftb")
	ctx := context.Background()

	// Objects of crowdsec-firewall-bouncer, which we must never touch.
	ns.Cmd(t, "nft", "add table ip crowdsec")
	ns.Cmd(t, "nft", "add set ip crowdsec crowdsec-blacklists-cscli { type ipv4_addr; flags timeout; }")
	ns.Cmd(t, "nft", "add element ip crowdsec crowdsec-blacklists-cscli { 192.0.2.99 timeout 1h }")
	foreign := ns.NftTable("ip", "crowdsec")

	b := newBackend(t, ns)
	// A single address inside a banned range, in both families: the
	// interval set would refuse it, the single-address set holds it.
	start := []bouncer.Element{
		el("192.0.2.1/32", time.Hour), el("198.51.100.0/24", time.Hour), el("198.51.100.7/32", 2*time.Hour),
		el("2001:db8::1/128", time.Hour), el("2001:db8:1::/48", time.Hour),
	}
	if err := b.Reconcile(ctx, start); err != nil {
		t.Fatal(err)
	}
	wantPrefixes(t, kernelSets(t, ns, b), "192.0.2.1/32", "198.51.100.0/24", "198.51.100.7/32", "2001:db8::1/128", "2001:db8:1::/48")

	// Traffic from a banned address is dropped and counted.
	ns.Cmd(t, "ip", "addr", "add", "192.0.2.1/32", "dev", "lo")
	ns.Cmd(t, "ip", "addr", "add", "203.0.113.50/32", "dev", "lo")
	for range 3 {
		ns.SendUDP(t, "192.0.2.1", "203.0.113.50", 5060)
	}
	ns.SendUDP(t, "203.0.113.50", "203.0.113.50", 5060) // not banned
	d, err := b.Dropped(ctx)
	if v4 := d[bouncer.DropKey{Origin: "apiban", IPType: "ipv4"}]; err != nil || v4.Packets != 3 || v4.Bytes == 0 || len(d) != 2 {
		t.Errorf("dropped %+v, %v; want 3 IPv4 packets of apiban, and IPv6 of apiban", d, err)
	}
	ruleset := ns.Cmd(t, "nft", "list", "table", "inet", tbl)
	for _, want := range []string{"hook input priority filter - 10", "hook forward priority filter - 10",
		`ip saddr @apiban-bridge-apiban-v4-ranges counter packets 0 bytes 0 drop comment "apiban"`,
		"ip6 saddr @apiban-bridge-apiban-v6 counter", `comment "apiban"`} {
		if !strings.Contains(ruleset, want) {
			t.Errorf("ruleset lacks %q:\n%s", want, ruleset)
		}
	}

	// One tick: delete, refresh to a longer timeout, add.
	err = b.Apply(ctx, bouncer.Changes{
		Delete:  []bouncer.Element{del("apiban", "198.51.100.0/24"), del("apiban", "2001:db8::1/128")},
		Refresh: []bouncer.Element{el("192.0.2.1/32", 100*time.Hour), el("2001:db8:1::/48", 50*time.Hour)},
		Add:     []bouncer.Element{el("203.0.113.0/25", time.Hour), el("192.0.2.2/32", time.Hour)},
	})
	if err != nil {
		t.Fatal(err)
	}
	got := kernelSets(t, ns, b)
	wantPrefixes(t, got, "192.0.2.1/32", "192.0.2.2/32", "198.51.100.7/32", "203.0.113.0/25", "2001:db8:1::/48")
	if e := got[netip.MustParsePrefix("192.0.2.1/32")]; e.Expires < 99*time.Hour {
		t.Errorf("refreshed 192.0.2.1 expires in %s, want about 100h", e.Expires)
	}
	if e := got[netip.MustParsePrefix("2001:db8:1::/48")]; e.Expires < 49*time.Hour {
		t.Errorf("refreshed 2001:db8:1::/48 expires in %s, want about 50h", e.Expires)
	}

	// A crash leaves the table behind; the next start replaces it.
	b2 := newBackend(t, ns)
	if err := b2.Reconcile(ctx, []bouncer.Element{el("192.0.2.3/32", time.Hour)}); err != nil {
		t.Fatal(err)
	}
	wantPrefixes(t, kernelSets(t, ns, b2), "192.0.2.3/32")
	if n := strings.Count(strings.Join(ns.NftTables(t), "\n"), "inet "+tbl); n != 1 {
		t.Errorf("%d tables named %s after restart, want 1", n, tbl)
	}

	if err := b2.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b2.Cleanup(ctx); err != nil {
		t.Errorf("second cleanup: %v", err)
	}
	if tables := ns.NftTables(t); len(tables) != 1 || tables[0] != "ip crowdsec" {
		t.Errorf("tables after cleanup: %v, want only ip crowdsec", tables)
	}
	if after := ns.NftTable("ip", "crowdsec"); after != foreign || foreign == "" {
		t.Errorf("crowdsec table changed:\n%s\nwas:\n%s", after, foreign)
	}
}

// TestKernelFailedApplyChangesNothing: a batch the kernel refuses (here a
// range nested in another) changes nothing, which is what "one transaction" means.
func TestKernelFailedApplyChangesNothing(t *testing.T) {
	netns.Require(t, "nft")
	ns := netns.New(t, "nftb")
	ctx := context.Background()
	b := newBackend(t, ns)
	if err := b.Reconcile(ctx, []bouncer.Element{el("198.51.100.0/24", time.Hour)}); err != nil {
		t.Fatal(err)
	}
	// The nested range overlaps: the whole batch, the valid add
	// included, must be refused.
	err := b.Apply(ctx, bouncer.Changes{Add: []bouncer.Element{el("192.0.2.5/32", time.Hour), el("198.51.100.128/25", time.Hour)}})
	if err == nil {
		t.Fatal("overlapping range accepted")
	}
	wantPrefixes(t, kernelSets(t, ns, b), "198.51.100.0/24")
}

func TestKernel100kInOneBatch(t *testing.T) {
	netns.Require(t, "nft")
	ns := netns.New(t, "nftb")
	b := newBackend(t, ns)
	elems := make([]bouncer.Element, 0, 100_000)
	for i := range 90_000 {
		// 11.0.0.0 onwards: public-looking, distinct.
		elems = append(elems, el(fmt.Sprintf("11.%d.%d.%d/32", i>>16, (i>>8)&0xff, i&0xff), time.Hour))
	}
	for i := range 10_000 {
		elems = append(elems, el(fmt.Sprintf("12.%d.%d.0/24", i>>8, i&0xff), time.Hour))
	}
	began := time.Now()
	if err := b.Reconcile(context.Background(), elems); err != nil {
		t.Fatal(err)
	}
	t.Logf("100,000 elements in one batch: %s", time.Since(began))
	out := ns.Cmd(t, "nft", "list", "set", "inet", tbl, prefix+"-apiban-v4-ranges")
	if !strings.Contains(out, "12.39.15.0/24") {
		t.Error("last range missing")
	}
	if err := b.Cleanup(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestMatchIntervals(t *testing.T) {
	// Adjacent ranges: the end of one has the key of the next's start.
	var els []nftables.SetElement
	for _, p := range []string{"198.51.100.0/25", "198.51.100.128/25", "255.255.255.0/24", "10.0.0.0/8"} {
		els = append(els, encodeOne(netip.MustParsePrefix(p), time.Hour)...)
	}
	slices.Reverse(els) // the kernel's order is not ours
	for addr, want := range map[string]string{
		"198.51.100.127": "198.51.100.0/25", "198.51.100.128": "198.51.100.128/25",
		"255.255.255.255": "255.255.255.0/24", "10.1.2.3": "10.0.0.0/8", "11.0.0.0": "", "9.255.255.255": "",
	} {
		got := match(els, netip.MustParseAddr(addr), true)
		switch {
		case want == "" && len(got) != 0:
			t.Errorf("%s: %v, want none", addr, got)
		case want != "" && (len(got) != 1 || got[0].Prefix.String() != want):
			t.Errorf("%s: %v, want %s", addr, got, want)
		}
	}
}

func TestKernelLookup(t *testing.T) {
	netns.Require(t, "nft")
	ns := netns.New(t, "nftl")
	ctx := context.Background()
	b := newBackend(t, ns)
	if _, err := b.Lookup(ctx, netip.MustParseAddr("192.0.2.1")); !errors.Is(err, bouncer.ErrNotLoaded) {
		t.Fatalf("before any load: %v, want ErrNotLoaded", err)
	}
	if tables := ns.NftTables(t); len(tables) != 0 {
		t.Fatalf("Lookup created %v", tables)
	}
	if err := b.Reconcile(ctx, []bouncer.Element{
		elo("lists:x", "192.0.2.1/32", time.Hour), el("198.51.100.0/24", 4*time.Hour), el("203.0.113.0/25", time.Hour),
		el("2001:db8::1/128", time.Hour), el("2001:db8:1::/48", 2*time.Hour),
	}); err != nil {
		t.Fatal(err)
	}
	// The ruleset but the expiry countdown.
	list := func() string {
		return regexp.MustCompile(` expires [0-9hms]+`).ReplaceAllString(ns.Cmd(t, "nft", "list", "table", "inet", tbl), "")
	}
	before := list()
	for _, c := range []struct {
		addr, set, prefix string
		left              time.Duration
	}{
		{"198.51.100.77", prefix + "-apiban-v4-ranges", "198.51.100.0/24", 4 * time.Hour},
		{"192.0.2.1", prefix + "-lists_x-0dd887d4-v4", "192.0.2.1/32", time.Hour},
		{"::ffff:192.0.2.1", prefix + "-lists_x-0dd887d4-v4", "192.0.2.1/32", time.Hour},
		{"2001:db8:1:ffff::9", prefix + "-apiban-v6-ranges", "2001:db8:1::/48", 2 * time.Hour},
		{"2001:db8::1", prefix + "-apiban-v6", "2001:db8::1/128", time.Hour},
		{"192.0.2.2", "", "", 0},
		{"203.0.113.128", "", "", 0},
		{"2001:db8::2", "", "", 0},
	} {
		got, err := b.Lookup(ctx, netip.MustParseAddr(c.addr))
		if err != nil {
			t.Fatalf("%s: %v", c.addr, err)
		}
		if c.set == "" {
			if len(got) != 0 {
				t.Errorf("%s: %+v, want none", c.addr, got)
			}
			continue
		}
		origin := "apiban"
		if strings.Contains(c.set, "lists") {
			origin = "lists:x"
		}
		if len(got) != 1 || got[0].Set != c.set || got[0].Prefix.String() != c.prefix || got[0].Origin != origin ||
			got[0].Left > c.left || got[0].Left < c.left-time.Minute {
			t.Errorf("%s: %+v, want %s in %s with about %s left", c.addr, got, c.prefix, c.set, c.left)
		}
	}
	if after := list(); after != before {
		t.Errorf("Lookup changed the table:\n%s\nwas:\n%s", after, before)
	}
}

func TestSetNames(t *testing.T) {
	b, err := New(Options{Table: tbl, SetPrefix: prefix, InputChain: "in"})
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("o", 40)
	for _, c := range []struct {
		origin string
		kind   setKind
		want   string
	}{
		{"apiban", setKind{}, "apiban-bridge-apiban-v4"},
		{"CAPI", setKind{v6: true, ranges: true}, "apiban-bridge-CAPI-v6-ranges"},
		{"crowdsec_x-1", setKind{ranges: true}, "apiban-bridge-crowdsec_x-1-v4-ranges"},
		// Cleaned: a hash tells it from an origin really named lists_x.
		{"lists:x", setKind{}, "apiban-bridge-lists_x-0dd887d4-v4"},
		{"lists:firehol_botscout_7d", setKind{}, "apiban-bridge-lists_firehol_botscout_7d-d60930e1-v4"}, // docs/bouncer.md
		{"", setKind{}, "apiban-bridge-none-811c9dc5-v4"},
		{long, setKind{}, "apiban-bridge-" + long[:32] + "-"},
	} {
		if got := b.setName(c.origin, c.kind); !strings.HasPrefix(got, c.want) {
			t.Errorf("setName(%q, %s) = %q, want %q", c.origin, c.kind.suffix(), got, c.want)
		}
	}
	// A name in use by another origin is not reused.
	b.names["apiban-bridge-dup-v4"] = "dup"
	if got := b.setName("dup", setKind{}); got != "apiban-bridge-dup-v4" {
		t.Errorf("same origin: %q", got)
	}
	b.names["apiban-bridge-other-v4"] = "not other"
	if got := b.setName("other", setKind{}); got == "apiban-bridge-other-v4" {
		t.Errorf("two origins share %q", got)
	}
}

// TestKernelOriginsInSetsOfTheirOwn: each origin's elements are in its own
// sets with their own counting rules, created in the tick that first
// needs them; an element moves between origins in one batch; drops are
// counted by origin and family.
func TestKernelOriginsInSetsOfTheirOwn(t *testing.T) {
	netns.Require(t, "nft")
	ns := netns.New(t, "nfto")
	ctx := context.Background()
	b := newBackend(t, ns)
	if err := b.Reconcile(ctx, []bouncer.Element{el("192.0.2.1/32", time.Hour), elo("crowdsec", "192.0.2.2/32", time.Hour)}); err != nil {
		t.Fatal(err)
	}
	// A new origin (CAPI) in a tick, and 192.0.2.1 moving from apiban to
	// crowdsec, in one batch.
	if err := b.Apply(ctx, bouncer.Changes{
		Delete: []bouncer.Element{del("apiban", "192.0.2.1/32")},
		Add: []bouncer.Element{elo("crowdsec", "192.0.2.1/32", 2*time.Hour), elo("CAPI", "198.51.100.0/24", time.Hour),
			elo("CAPI", "2001:db8::5/128", time.Hour)},
	}); err != nil {
		t.Fatal(err)
	}
	got := kernelElements(t, ns, b)
	for p, set := range map[string]string{
		"192.0.2.1/32": prefix + "-crowdsec-v4", "192.0.2.2/32": prefix + "-crowdsec-v4",
		"198.51.100.0/24": prefix + "-CAPI-v4-ranges", "2001:db8::5/128": prefix + "-CAPI-v6",
	} {
		if e, ok := got[netip.MustParsePrefix(p)]; !ok || e.set != set {
			t.Errorf("%s in %q, want %q", p, e.set, set)
		}
	}
	if len(got) != 4 {
		t.Errorf("kernel holds %v, want 4 elements", got)
	}

	// Traffic: 2 packets from crowdsec's address, 1 from CAPI's range, 1
	// from CAPI's IPv6 address.
	ns.Cmd(t, "ip", "link", "set", "lo", "up")
	for _, a := range []string{"192.0.2.1/32", "198.51.100.9/32", "203.0.113.50/32"} {
		ns.Cmd(t, "ip", "addr", "add", a, "dev", "lo")
	}
	ns.Cmd(t, "ip", "-6", "addr", "add", "2001:db8::5/128", "dev", "lo", "nodad")
	ns.Cmd(t, "ip", "-6", "addr", "add", "2001:db8::50/128", "dev", "lo", "nodad")
	ns.SendUDP(t, "192.0.2.1", "203.0.113.50", 5060)
	ns.SendUDP(t, "192.0.2.1", "203.0.113.50", 5060)
	ns.SendUDP(t, "198.51.100.9", "203.0.113.50", 5060)
	ns.SendUDP(t, "2001:db8::5", "2001:db8::50", 5060)
	// A packet sent on lo is taken in by the kernel's backlog, possibly a
	// moment after the write returns: read the counters until they agree,
	// for at most five seconds (two were once not enough on a loaded machine).
	want := map[string]uint64{"crowdsec/ipv4": 2, "CAPI/ipv4": 1, "CAPI/ipv6": 1}
	packets := map[string]uint64{}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		d, err := b.Dropped(ctx)
		if err != nil {
			t.Fatal(err)
		}
		clear(packets)
		for k, c := range d {
			if c.Packets > 0 {
				packets[k.Origin+"/"+k.IPType] = c.Packets
			}
			if c.Packets > 0 && c.Bytes == 0 {
				t.Fatalf("%+v: packets but no bytes", k)
			}
		}
		if maps.Equal(packets, want) || time.Now().After(deadline) {
			break
		}
	}
	if !maps.Equal(packets, want) {
		t.Errorf("dropped packets %v, want %v", packets, want)
	}

	// A refused batch that would create a set creates nothing, and the
	// next batch can still create that origin's set.
	bad := bouncer.Changes{Add: []bouncer.Element{elo("cscli", "192.0.2.9/32", time.Hour), elo("CAPI", "198.51.100.128/25", time.Hour)}}
	if err := b.Apply(ctx, bad); err == nil {
		t.Fatal("overlapping range accepted")
	}
	if strings.Contains(ns.Cmd(t, "nft", "list", "table", "inet", tbl), "cscli") {
		t.Error("a refused batch left cscli's set")
	}
	if err := b.Apply(ctx, bouncer.Changes{Add: []bouncer.Element{elo("cscli", "192.0.2.9/32", time.Hour)}}); err != nil {
		t.Fatal(err)
	}
	if e := kernelElements(t, ns, b)[netip.MustParsePrefix("192.0.2.9/32")]; e.set != prefix+"-cscli-v4" {
		t.Errorf("192.0.2.9 in %q after the refused batch", e.set)
	}
}

// TestKernelLongOrigins: an interval set's comment shares 256 bytes of
// userdata with the key byte order; a long or non-ASCII origin must
// neither fail the batch nor come back as a broken label.
func TestKernelLongOrigins(t *testing.T) {
	netns.Require(t, "nft")
	ns := netns.New(t, "nftlong")
	ctx := context.Background()
	b := newBackend(t, ns)
	long, accents := strings.Repeat("o", 300), "x"+strings.Repeat("é", 150)
	if err := b.Reconcile(ctx, []bouncer.Element{elo(long, "198.51.100.0/24", time.Hour), elo(accents, "203.0.113.0/24", time.Hour),
		elo(long, "192.0.2.1/32", time.Hour)}); err != nil {
		t.Fatal(err)
	}
	d, err := b.Dropped(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for k := range d {
		if !utf8.ValidString(k.Origin) || (k.Origin != bouncer.CutOrigin(long, maxComment) && k.Origin != bouncer.CutOrigin(accents, maxComment)) {
			t.Errorf("origin read back %q", k.Origin)
		}
	}
	if len(d) != 2 {
		t.Errorf("dropped keys %v, want the two origins", d)
	}
	got, err := b.Lookup(ctx, netip.MustParseAddr("203.0.113.9"))
	if err != nil || len(got) != 1 || got[0].Origin != bouncer.CutOrigin(accents, maxComment) {
		t.Errorf("lookup %+v, %v", got, err)
	}
}

// TestKernelRenew: a renewal leaves exactly one copy with the new timeout,
// whether the old copy is still in the set or already gone, for single
// addresses and ranges, including in a set this batch creates. The kernel
// here (6.18) also updates a timeout on a plain add, so this checks that
// the kernel takes add, delete, add in one batch in every case; kernels
// that keep the old timeout are modelled by bouncer's recorder
// (TestRenewOverExpiringCopy).
func TestKernelRenew(t *testing.T) {
	netns.Require(t, "nft")
	ns := netns.New(t, "nftrenew")
	ctx := context.Background()
	b := newBackend(t, ns)
	if err := b.Reconcile(ctx, []bouncer.Element{el("192.0.2.1/32", time.Minute), el("198.51.100.0/24", time.Minute)}); err != nil {
		t.Fatal(err)
	}
	renew := []bouncer.Element{
		el("192.0.2.1/32", 5*time.Hour), el("198.51.100.0/24", 5*time.Hour), // present
		el("192.0.2.2/32", 5*time.Hour), el("203.0.113.0/24", 5*time.Hour), // gone
		elo("CAPI", "192.0.2.3/32", 5*time.Hour), // in a set created now
	}
	if err := b.Apply(ctx, bouncer.Changes{Renew: renew}); err != nil {
		t.Fatal(err)
	}
	got := kernelSets(t, ns, b)
	wantPrefixes(t, got, "192.0.2.1/32", "198.51.100.0/24", "192.0.2.2/32", "203.0.113.0/24", "192.0.2.3/32")
	for p, e := range got {
		if e.Expires < 4*time.Hour {
			t.Errorf("%s expires in %s, want about 5h", p, e.Expires)
		}
	}
}

// TestKernelForeignTableUntouched: a table with our name that we did not
// create (no rule carries the marker) is refused at start and stop, and
// survives both; ours carries the marker on the reply rule of each chain.
func TestKernelForeignTableUntouched(t *testing.T) {
	netns.Require(t, "nft")
	ns := netns.New(t, "nftf")
	ctx := context.Background()
	ns.Cmd(t, "nft", "add table inet "+tbl)
	ns.Cmd(t, "nft", "add chain inet "+tbl+" apiban-bridge-input { type filter hook input priority 0; policy accept; }")
	ns.Cmd(t, "nft", "add rule inet "+tbl+` apiban-bridge-input tcp dport 22 accept comment "someone else's"`)
	before := ns.NftTable("inet", tbl)

	b := newBackend(t, ns)
	wantErr := `nftables: table inet apiban_bridge exists but crowdsec-apiban-bridge did not create it (no rule commented "crowdsec-apiban-bridge"): not touching it`
	if err := b.Reconcile(ctx, []bouncer.Element{el("192.0.2.1/32", time.Hour)}); err == nil || !strings.Contains(err.Error(), wantErr) {
		t.Errorf("reconcile over a foreign table: %v, want %q", err, wantErr)
	}
	if err := b.Cleanup(ctx); err == nil || !strings.Contains(err.Error(), wantErr) {
		t.Errorf("cleanup of a foreign table: %v, want %q", err, wantErr)
	}
	if after := ns.NftTable("inet", tbl); after != before {
		t.Errorf("foreign table changed:\n%s\nwas:\n%s", after, before)
	}

	// Once it is gone, ours is made, marked, and replaced on restart.
	ns.Cmd(t, "nft", "delete table inet "+tbl)
	if err := b.Reconcile(ctx, []bouncer.Element{el("192.0.2.1/32", time.Hour)}); err != nil {
		t.Fatal(err)
	}
	ruleset := ns.NftTable("inet", tbl)
	if n := strings.Count(ruleset, `ct state established,related ct direction reply accept comment "crowdsec-apiban-bridge"`); n != 2 {
		t.Errorf("%d marked reply rules, want one per chain:\n%s", n, ruleset)
	}
	if err := newBackend(t, ns).Reconcile(ctx, nil); err != nil {
		t.Errorf("restart over our own table: %v", err)
	}
	if d, err := b.Dropped(ctx); err != nil || len(d) != 0 {
		t.Errorf("dropped %v, %v: the reply rule is no origin's", d, err)
	}
	if err := b.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
}
