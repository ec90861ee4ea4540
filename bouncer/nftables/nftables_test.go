package nftables

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

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

func TestEncode(t *testing.T) {
	els := encode(netip.MustParsePrefix("198.51.100.0/24"), time.Minute)
	if len(els) != 2 || netip.AddrFrom4([4]byte(els[1].Key)).String() != "198.51.100.0" && !els[1].IntervalEnd {
		t.Fatalf("range: %+v", els)
	}
	if got := netip.AddrFrom4([4]byte(els[1].Key)).String(); got != "198.51.101.0" || !els[1].IntervalEnd {
		t.Errorf("range end %s (interval end %v), want 198.51.101.0", got, els[1].IntervalEnd)
	}
	if top := encode(netip.MustParsePrefix("255.255.255.0/24"), time.Minute); len(top) != 1 {
		t.Errorf("range at the top of the space: %d elements, want 1 (no end)", len(top))
	}
	if one := encode(netip.MustParsePrefix("192.0.2.1/32"), time.Minute); len(one) != 1 || one[0].IntervalEnd {
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

func el(p string, d time.Duration) bouncer.Element {
	return bouncer.Element{Prefix: netip.MustParsePrefix(p), Timeout: d}
}

// kernelSets returns every element of our four sets, by prefix.
func kernelSets(t *testing.T, ns *netns.NS, b *Backend) map[netip.Prefix]netns.SetElem {
	t.Helper()
	all := map[netip.Prefix]netns.SetElem{}
	for _, name := range b.SetNames() {
		elems, ok := ns.NftSet(t, "inet", tbl, name)
		if !ok {
			t.Fatalf("set %s missing", name)
		}
		for p, e := range elems {
			all[p] = e
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
	if d, err := b.Dropped(ctx); err != nil || d.Packets != 3 || d.Bytes == 0 {
		t.Errorf("dropped %+v, %v; want 3 packets", d, err)
	}
	ruleset := ns.Cmd(t, "nft", "list", "table", "inet", tbl)
	for _, want := range []string{"hook input priority filter - 10", "hook forward priority filter - 10",
		"ip saddr @apiban-bridge-v4-ranges counter packets 0 bytes 0 drop", "ip6 saddr @apiban-bridge-v6 counter"} {
		if !strings.Contains(ruleset, want) {
			t.Errorf("ruleset lacks %q:\n%s", want, ruleset)
		}
	}

	// One tick: delete, refresh to a longer timeout, add.
	err := b.Apply(ctx, bouncer.Changes{
		Delete:  []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("2001:db8::1/128")},
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
	out := ns.Cmd(t, "nft", "list", "set", "inet", tbl, prefix+"-v4-ranges")
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
		els = append(els, encode(netip.MustParsePrefix(p), time.Hour)...)
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
		el("192.0.2.1/32", time.Hour), el("198.51.100.0/24", 4*time.Hour), el("203.0.113.0/25", time.Hour),
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
		{"198.51.100.77", prefix + "-v4-ranges", "198.51.100.0/24", 4 * time.Hour},
		{"192.0.2.1", prefix + "-v4", "192.0.2.1/32", time.Hour},
		{"::ffff:192.0.2.1", prefix + "-v4", "192.0.2.1/32", time.Hour},
		{"2001:db8:1:ffff::9", prefix + "-v6-ranges", "2001:db8:1::/48", 2 * time.Hour},
		{"2001:db8::1", prefix + "-v6", "2001:db8::1/128", time.Hour},
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
		if len(got) != 1 || got[0].Set != c.set || got[0].Prefix.String() != c.prefix ||
			got[0].Left > c.left || got[0].Left < c.left-time.Minute {
			t.Errorf("%s: %+v, want %s in %s with about %s left", c.addr, got, c.prefix, c.set, c.left)
		}
	}
	if after := list(); after != before {
		t.Errorf("Lookup changed the table:\n%s\nwas:\n%s", after, before)
	}
}
