package ipset

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bouncer"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/netns"
)

func TestEntry(t *testing.T) {
	e := entry(netip.MustParsePrefix("198.51.100.0/24"), 1500*time.Millisecond)
	if e.IP.String() != "198.51.100.0" || e.CIDR != 24 || *e.Timeout != 2 || !e.Replace {
		t.Errorf("entry %+v timeout %d", e, *e.Timeout)
	}
	if e := entry(netip.MustParsePrefix("192.0.2.1/32"), 365*24*time.Hour); *e.Timeout != 2147483 {
		t.Errorf("a year: timeout %d, want the ipset maximum", *e.Timeout)
	}
	if e := entry(netip.MustParsePrefix("2001:db8::1/128"), time.Millisecond); *e.Timeout != 1 || e.CIDR != 128 {
		t.Errorf("v6: %+v timeout %d", e, *e.Timeout)
	}
}

func newBackend(t *testing.T, ns *netns.NS) *Backend {
	t.Helper()
	b, err := New(Options{SetPrefix: "apiban-bridge", Chain: "APIBAN_BRIDGE", Hooks: []string{"INPUT", "FORWARD"},
		NetNSFd: ns.Fd(), CommandPrefix: []string{"ip", "netns", "exec", ns.Name}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func el(p string, d time.Duration) bouncer.Element {
	return bouncer.Element{Prefix: netip.MustParsePrefix(p), Timeout: d}
}

func members(t *testing.T, ns *netns.NS) map[netip.Prefix]netns.SetElem {
	t.Helper()
	all := map[netip.Prefix]netns.SetElem{}
	for _, s := range []string{"apiban-bridge-v4", "apiban-bridge-v6"} {
		m, ok := ns.IpsetMembers(t, s)
		if !ok {
			t.Fatalf("set %s missing", s)
		}
		for p, e := range m {
			all[p] = e
		}
	}
	return all
}

func wantMembers(t *testing.T, got map[netip.Prefix]netns.SetElem, want ...string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("sets hold %v, want %v", got, want)
	}
	for _, w := range want {
		if _, ok := got[netip.MustParsePrefix(w)]; !ok {
			t.Errorf("sets lack %s", w)
		}
	}
}

func TestKernelIpset(t *testing.T) {
	netns.Require(t, "ipset", "iptables", "ip6tables")
	ns := netns.New(t, "ipsb")
	ctx := context.Background()
	b := newBackend(t, ns)

	// A range and an address inside it side by side, in both families.
	if err := b.Reconcile(ctx, []bouncer.Element{el("198.51.100.0/24", time.Hour), el("198.51.100.7/32", time.Hour),
		el("192.0.2.1/32", time.Hour), el("2001:db8::/32", time.Hour), el("2001:db8::1/128", time.Hour)}); err != nil {
		t.Fatal(err)
	}
	wantMembers(t, members(t, ns), "198.51.100.0/24", "198.51.100.7/32", "192.0.2.1/32", "2001:db8::/32", "2001:db8::1/128")

	// Traffic from a banned address is dropped and counted.
	ns.Cmd(t, "ip", "addr", "add", "198.51.100.9/32", "dev", "lo")
	ns.Cmd(t, "ip", "addr", "add", "203.0.113.50/32", "dev", "lo")
	for range 2 {
		ns.SendUDP(t, "198.51.100.9", "203.0.113.50", 5060) // inside the banned range
	}
	ns.SendUDP(t, "203.0.113.50", "203.0.113.50", 5060)
	if d, err := b.Dropped(ctx); err != nil || d.Packets != 2 || d.Bytes == 0 {
		t.Errorf("dropped %+v, %v; want 2 packets", d, err)
	}
	for _, cmd := range []string{"iptables", "ip6tables"} {
		rules := ns.Cmd(t, cmd, "-w", "-S")
		for _, want := range []string{"-A INPUT -j APIBAN_BRIDGE", "-A FORWARD -j APIBAN_BRIDGE", "-j DROP"} {
			if strings.Count(rules, want) != 1 {
				t.Errorf("%s: want one %q in\n%s", cmd, want, rules)
			}
		}
	}

	// A tick: delete (one of them already gone), refresh, add.
	if err := b.Apply(ctx, bouncer.Changes{
		Delete:  []netip.Prefix{netip.MustParsePrefix("198.51.100.7/32"), netip.MustParsePrefix("203.0.113.9/32")},
		Refresh: []bouncer.Element{el("192.0.2.1/32", 100*time.Hour)},
		Add:     []bouncer.Element{el("203.0.113.0/25", time.Hour)},
	}); err != nil {
		t.Fatal(err)
	}
	got := members(t, ns)
	wantMembers(t, got, "198.51.100.0/24", "192.0.2.1/32", "203.0.113.0/25", "2001:db8::/32", "2001:db8::1/128")
	if e := got[netip.MustParsePrefix("192.0.2.1/32")]; e.Expires < 99*time.Hour {
		t.Errorf("refreshed element expires in %s, want about 100h", e.Expires)
	}

	// Restart after a crash: one set of objects, holding the new content.
	b2 := newBackend(t, ns)
	if err := b2.Reconcile(ctx, []bouncer.Element{el("192.0.2.3/32", time.Hour)}); err != nil {
		t.Fatal(err)
	}
	wantMembers(t, members(t, ns), "192.0.2.3/32")
	if sets := strings.Fields(ns.Cmd(t, "ipset", "list", "-n")); len(sets) != 2 {
		t.Errorf("sets after restart: %v, want 2", sets)
	}
	if rules := ns.Cmd(t, "iptables", "-w", "-S"); strings.Count(rules, "-j APIBAN_BRIDGE") != 2 || strings.Count(rules, "-j DROP") != 1 {
		t.Errorf("rules after restart:\n%s", rules)
	}

	if err := b2.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
	if sets := strings.TrimSpace(ns.Cmd(t, "ipset", "list", "-n")); sets != "" {
		t.Errorf("sets after cleanup: %s", sets)
	}
	if rules := ns.Cmd(t, "iptables", "-w", "-S") + ns.Cmd(t, "ip6tables", "-w", "-S"); strings.Contains(rules, "APIBAN_BRIDGE") {
		t.Errorf("rules after cleanup:\n%s", rules)
	}
}

func TestKernelIpset100k(t *testing.T) {
	netns.Require(t, "ipset", "iptables", "ip6tables")
	ns := netns.New(t, "ipsb")
	b := newBackend(t, ns)
	elems := make([]bouncer.Element, 0, 100_000)
	for i := range 100_000 {
		elems = append(elems, el(fmt.Sprintf("11.%d.%d.%d/32", i>>16, (i>>8)&0xff, i&0xff), time.Hour))
	}
	began := time.Now()
	if err := b.Reconcile(context.Background(), elems); err != nil {
		t.Fatal(err)
	}
	t.Logf("100,000 elements: %s", time.Since(began))
	// Reload: fills a fresh set and swaps it in.
	if err := b.Reconcile(context.Background(), elems[:10]); err != nil {
		t.Fatal(err)
	}
	if n := len(members(t, ns)); n != 10 {
		t.Errorf("%d members after the reload, want 10", n)
	}
	if err := b.Cleanup(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestKernelIpsetLookup(t *testing.T) {
	netns.Require(t, "ipset", "iptables", "ip6tables")
	ns := netns.New(t, "ipsl")
	ctx := context.Background()
	b := newBackend(t, ns)
	if _, err := b.Lookup(ctx, netip.MustParseAddr("192.0.2.1")); !errors.Is(err, bouncer.ErrNotLoaded) {
		t.Fatalf("before any load: %v, want ErrNotLoaded", err)
	}
	if sets := strings.TrimSpace(ns.Cmd(t, "ipset", "list", "-n")); sets != "" {
		t.Fatalf("Lookup created %s", sets)
	}
	if err := b.Reconcile(ctx, []bouncer.Element{
		el("198.51.100.0/24", 4*time.Hour), el("198.51.100.7/32", time.Hour), el("192.0.2.1/32", time.Hour),
		el("2001:db8::/32", 2*time.Hour), el("2001:db8::1/128", time.Hour),
	}); err != nil {
		t.Fatal(err)
	}
	before := members(t, ns)
	type m struct {
		prefix string
		left   time.Duration
	}
	for _, c := range []struct {
		addr string
		want []m
	}{
		{"198.51.100.77", []m{{"198.51.100.0/24", 4 * time.Hour}}},
		{"198.51.100.7", []m{{"198.51.100.7/32", time.Hour}, {"198.51.100.0/24", 4 * time.Hour}}},
		{"192.0.2.1", []m{{"192.0.2.1/32", time.Hour}}},
		{"::ffff:192.0.2.1", []m{{"192.0.2.1/32", time.Hour}}},
		{"2001:db8:ffff::9", []m{{"2001:db8::/32", 2 * time.Hour}}},
		{"192.0.2.2", nil},
		{"2001:db9::1", nil},
	} {
		got, err := b.Lookup(ctx, netip.MustParseAddr(c.addr))
		if err != nil {
			t.Fatalf("%s: %v", c.addr, err)
		}
		if len(got) != len(c.want) {
			t.Errorf("%s: %+v, want %v", c.addr, got, c.want)
			continue
		}
		set := "apiban-bridge-v4"
		if strings.Contains(c.addr, "2001:") {
			set = "apiban-bridge-v6"
		}
		for i, w := range c.want {
			if g := got[i]; g.Set != set || g.Prefix.String() != w.prefix || g.Left > w.left || g.Left < w.left-time.Minute {
				t.Errorf("%s: match %d is %+v, want %s in %s with about %s left", c.addr, i, g, w.prefix, set, w.left)
			}
		}
	}
	if after := members(t, ns); len(after) != len(before) {
		t.Errorf("Lookup changed the sets: %v, was %v", after, before)
	}
}
