package ipset

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bouncer"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/netns"
)

const prefix = "apiban-bridge"

func newBackend(t *testing.T, ns *netns.NS) *Backend {
	t.Helper()
	log, _ := logtest.NewNullLogger()
	return newBackendLog(t, ns, log)
}

func newBackendLog(t *testing.T, ns *netns.NS, log logrus.FieldLogger) *Backend {
	t.Helper()
	b, err := New(Options{SetPrefix: prefix, Chain: "APIBAN_BRIDGE", Hooks: []string{"INPUT", "FORWARD"},
		NetNSFd: ns.Fd(), CommandPrefix: []string{"ip", "netns", "exec", ns.Name}, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func el(p string, d time.Duration, origin string) bouncer.Element {
	return bouncer.Element{Prefix: netip.MustParsePrefix(p), Timeout: d, Origin: origin}
}

// sets lists the namespace's sets with `ipset list -n`.
func sets(t *testing.T, ns *netns.NS) []string {
	t.Helper()
	out := strings.Fields(ns.Cmd(t, "ipset", "list", "-n"))
	slices.Sort(out)
	return out
}

// ourSets lists the namespace's sets of ours.
func ourSets(t *testing.T, ns *netns.NS) []string {
	t.Helper()
	var out []string
	for _, s := range sets(t, ns) {
		if OwnedSet(prefix, s) {
			out = append(out, s)
		}
	}
	return out
}

// members maps each element of our element sets to the set holding it.
func members(t *testing.T, ns *netns.NS) map[netip.Prefix]string {
	t.Helper()
	all := map[netip.Prefix]string{}
	for _, s := range ourSets(t, ns) {
		if _, _, ok := ElementSet(prefix, s); !ok {
			continue
		}
		m, _ := ns.IpsetMembers(t, s)
		for p := range m {
			if other, dup := all[p]; dup {
				t.Errorf("%s is in %s and %s", p, other, s)
			}
			all[p] = s
		}
	}
	return all
}

// wantMembers checks that the sets hold exactly want, each "PREFIX in SET".
func wantMembers(t *testing.T, got map[netip.Prefix]string, want ...string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("sets hold %v, want %v", got, want)
	}
	for _, w := range want {
		p, set, _ := strings.Cut(w, " in ")
		if g, ok := got[netip.MustParsePrefix(p)]; !ok || g != set {
			t.Errorf("%s is in %q, want %s", p, g, set)
		}
	}
}

// rules returns our chain's rules in one family (iptables -S).
func rules(t *testing.T, ns *netns.NS, cmd string) string {
	t.Helper()
	return ns.Cmd(t, cmd, "-w", "-S", "APIBAN_BRIDGE")
}

func wantJumps(t *testing.T, ns *netns.NS) {
	t.Helper()
	for _, cmd := range []string{"iptables", "ip6tables"} {
		all := ns.Cmd(t, cmd, "-w", "-S")
		for _, want := range []string{"-A INPUT -j APIBAN_BRIDGE", "-A FORWARD -j APIBAN_BRIDGE"} {
			if n := strings.Count(all, want); n != 1 {
				t.Errorf("%s: %d of %q, want 1:\n%s", cmd, n, want, all)
			}
		}
	}
}

// msgLog records the add and delete messages a backend sends.
type msgLog struct {
	mu   sync.Mutex
	msgs []string // "add SET N"
}

func (l *msgLog) hook(b *Backend) {
	b.c.sent = func(cmd int, set string, n int) {
		l.mu.Lock()
		defer l.mu.Unlock()
		verb := "add"
		if cmd == nl.IPSET_CMD_DEL {
			verb = "del"
		}
		l.msgs = append(l.msgs, fmt.Sprintf("%s %s %d", verb, set, n))
	}
}

// count returns the messages of verb ("add", "del") to set and their
// element total.
func (l *msgLog) count(verb, set string) (msgs, elements int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, m := range l.msgs {
		var v, s string
		var n int
		fmt.Sscan(m, &v, &s, &n)
		if v == verb && s == set {
			msgs++
			elements += n
		}
	}
	return msgs, elements
}

func (l *msgLog) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs = nil
}

func TestKernelIpset(t *testing.T) {
	netns.Require(t, "ipset", "iptables", "ip6tables")
	ns := netns.New(t, "ipsb")
	ctx := context.Background()
	log, hook := logtest.NewNullLogger()
	b := newBackendLog(t, ns, log)

	// Two origins: a range and an address inside it side by side, in
	// both families. Slots go in byte order: CAPI 0, crowdsec 1.
	if err := b.Reconcile(ctx, []bouncer.Element{
		el("198.51.100.0/24", time.Hour, "crowdsec"), el("198.51.100.7/32", time.Hour, "CAPI"),
		el("192.0.2.1/32", time.Hour, "crowdsec"), el("2001:db8::/32", time.Hour, "CAPI"), el("2001:db8::1/128", time.Hour, "crowdsec"),
	}); err != nil {
		t.Fatal(err)
	}
	wantMembers(t, members(t, ns), "198.51.100.0/24 in apiban-bridge-1-v4", "198.51.100.7/32 in apiban-bridge-0-v4",
		"192.0.2.1/32 in apiban-bridge-1-v4", "2001:db8::/32 in apiban-bridge-0-v6", "2001:db8::1/128 in apiban-bridge-1-v6")
	if got, want := ourSets(t, ns), []string{"apiban-bridge-0-v4", "apiban-bridge-0-v6", "apiban-bridge-1-v4", "apiban-bridge-1-v6", "apiban-bridge-origins"}; !slices.Equal(got, want) {
		t.Errorf("sets %v, want %v", got, want)
	}
	for _, f := range families {
		r := rules(t, ns, f.iptables)
		for slot := range 2 {
			if want := "-A APIBAN_BRIDGE -m set --match-set apiban-bridge-" + fmt.Sprint(slot) + "-" + f.suffix + " src -j DROP"; strings.Count(r, want) != 1 {
				t.Errorf("%s: want one %q in\n%s", f.iptables, want, r)
			}
		}
	}
	wantJumps(t, ns)
	reg := ns.Cmd(t, "ipset", "list", "apiban-bridge-origins")
	for _, want := range []string{`0 comment "CAPI"`, `1 comment "crowdsec"`} {
		if !strings.Contains(reg, want) {
			t.Errorf("registry lacks %s:\n%s", want, reg)
		}
	}
	wantLogged(t, hook, "CAPI 0", "crowdsec 1")

	// A tick: delete (one of them already gone), refresh, add; a new
	// origin gets slot 2 with its sets and rules; an element moves from
	// crowdsec to apiban.
	if err := b.Apply(ctx, bouncer.Changes{
		Delete:  []bouncer.Element{el("198.51.100.7/32", 0, "CAPI"), el("203.0.113.9/32", 0, "crowdsec"), el("192.0.2.1/32", 0, "crowdsec")},
		Refresh: []bouncer.Element{el("198.51.100.0/24", 100*time.Hour, "crowdsec")},
		Add:     []bouncer.Element{el("203.0.113.0/25", time.Hour, "cscli"), el("192.0.2.1/32", 2*time.Hour, "apiban")},
	}); err != nil {
		t.Fatal(err)
	}
	wantMembers(t, members(t, ns), "198.51.100.0/24 in apiban-bridge-1-v4", "203.0.113.0/25 in apiban-bridge-2-v4",
		"192.0.2.1/32 in apiban-bridge-3-v4", "2001:db8::/32 in apiban-bridge-0-v6", "2001:db8::1/128 in apiban-bridge-1-v6")
	if e, _ := ns.IpsetMembers(t, "apiban-bridge-1-v4"); e[netip.MustParsePrefix("198.51.100.0/24")].Expires < 99*time.Hour {
		t.Errorf("refreshed element: %+v, want about 100h", e)
	}
	if r := rules(t, ns, "ip6tables"); !strings.Contains(r, "apiban-bridge-3-v6 src -j DROP") {
		t.Errorf("no rule for the new slot's IPv6 set:\n%s", r)
	}
	wantLogged(t, hook, "cscli 2", "apiban 3")
	if name, ok := b.SetName("apiban", false); !ok || name != "apiban-bridge-3-v4" {
		t.Errorf("SetName(apiban) = %s, %v", name, ok)
	}

	// Restart after a crash: a new generation of sets under the lowest
	// slot not in use (0 to 3 are), one set of objects, holding the new
	// content.
	b2 := newBackend(t, ns)
	if err := b2.Reconcile(ctx, []bouncer.Element{el("192.0.2.3/32", time.Hour, "crowdsec")}); err != nil {
		t.Fatal(err)
	}
	wantMembers(t, members(t, ns), "192.0.2.3/32 in apiban-bridge-4-v4")
	if got, want := ourSets(t, ns), []string{"apiban-bridge-4-v4", "apiban-bridge-4-v6", "apiban-bridge-origins"}; !slices.Equal(got, want) {
		t.Errorf("sets after restart: %v, want %v", got, want)
	}
	wantJumps(t, ns)
	if r := rules(t, ns, "iptables"); strings.Count(r, "-j DROP") != 1 {
		t.Errorf("rules after restart:\n%s", r)
	}

	if err := b2.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
	if s := sets(t, ns); len(s) != 0 {
		t.Errorf("sets after cleanup: %v", s)
	}
	if r := ns.Cmd(t, "iptables", "-w", "-S") + ns.Cmd(t, "ip6tables", "-w", "-S"); strings.Contains(r, "APIBAN_BRIDGE") {
		t.Errorf("rules after cleanup:\n%s", r)
	}
}

// wantLogged checks that each "ORIGIN SLOT" was logged at info.
func wantLogged(t *testing.T, hook *logtest.Hook, want ...string) {
	t.Helper()
	var got []string
	for _, e := range hook.AllEntries() {
		if e.Level == logrus.InfoLevel && e.Message == "bouncer: ipset sets for origin" {
			got = append(got, fmt.Sprintf("%s %d", e.Data["origin"], e.Data["slot"]))
		}
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("log lacks origin and slot %q: %v", w, got)
		}
	}
	hook.Reset()
}

func TestKernelIpsetDropped(t *testing.T) {
	netns.Require(t, "ipset", "iptables", "ip6tables")
	ns := netns.New(t, "ipsd")
	ctx := context.Background()
	b := newBackend(t, ns)
	const lists = "lists:firehol_botscout_7d"
	if err := b.Reconcile(ctx, []bouncer.Element{el("198.51.100.0/24", time.Hour, "crowdsec"),
		el("192.0.2.0/24", time.Hour, lists), el("2001:db8:bad::/48", time.Hour, lists)}); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"198.51.100.9/32", "192.0.2.9/32", "203.0.113.50/32", "2001:db8:bad::9/128", "2001:db8:f00d::50/128"} {
		ns.Cmd(t, "ip", "addr", "add", a, "dev", "lo")
	}
	// Each datagram is "probe": 33 bytes in IPv4, 53 in IPv6.
	for range 2 {
		ns.SendUDP(t, "198.51.100.9", "203.0.113.50", 5060)
	}
	ns.SendUDP(t, "192.0.2.9", "203.0.113.50", 5060)
	for range 3 {
		ns.SendUDP(t, "2001:db8:bad::9", "2001:db8:f00d::50", 5060)
	}
	ns.SendUDP(t, "203.0.113.50", "203.0.113.50", 5060) // clean: not dropped
	want := map[bouncer.DropKey]bouncer.Counters{
		{Origin: "crowdsec", IPType: "ipv4"}: {Packets: 2, Bytes: 66},
		{Origin: "crowdsec", IPType: "ipv6"}: {},
		{Origin: lists, IPType: "ipv4"}:      {Packets: 1, Bytes: 33},
		{Origin: lists, IPType: "ipv6"}:      {Packets: 3, Bytes: 159},
	}
	// A packet sent on lo is taken in by the kernel's backlog, possibly a
	// moment after the write returns: read until the counters agree, for
	// at most five seconds.
	var got map[bouncer.DropKey]bouncer.Counters
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var err error
		if got, err = b.Dropped(ctx); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) == fmt.Sprint(want) || time.Now().After(deadline) {
			break
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("dropped %v,\nwant %v", got, want)
	}
	// Another process (a fresh backend) reads the same from the kernel.
	other, err := newBackend(t, ns).Dropped(ctx)
	if err != nil || fmt.Sprint(other) != fmt.Sprint(want) {
		t.Errorf("dropped read by another backend %v, %v;\nwant %v", other, err, want)
	}
}

func TestKernelIpsetBatch(t *testing.T) {
	netns.Require(t, "ipset", "iptables", "ip6tables")
	ns := netns.New(t, "ipsn")
	ctx := context.Background()
	b := newBackend(t, ns)
	var log msgLog
	log.hook(b)
	if err := b.Reconcile(ctx, nil); err != nil {
		t.Fatal(err)
	}
	var v4, v6 []bouncer.Element
	for i := range 3000 {
		v4 = append(v4, el(fmt.Sprintf("11.0.%d.%d/32", i>>8, i&0xff), time.Hour, "apiban"))
		v6 = append(v6, el(fmt.Sprintf("2001:db8::%x/128", i), time.Hour, "apiban"))
	}
	// One Apply of 6,000 adds. With one request per element this would be
	// 6,000 messages.
	if err := b.Apply(ctx, bouncer.Changes{Add: slices.Concat(v4, v6)}); err != nil {
		t.Fatal(err)
	}
	for _, set := range []string{"apiban-bridge-0-v4", "apiban-bridge-0-v6"} {
		if n := count(t, ns, set); n != 3000 {
			t.Errorf("%s holds %d elements, want 3000", set, n)
		}
	}
	wantBatched(t, &log, "add", 3000)
	log.reset()

	// Delete them all, and one already absent in each family, in one Apply.
	dels := slices.Concat(v4, v6, []bouncer.Element{el("11.9.9.9/32", 0, "apiban"), el("2001:db8:9::9/128", 0, "apiban")})
	if err := b.Apply(ctx, bouncer.Changes{Delete: dels}); err != nil {
		t.Fatal(err)
	}
	if m := members(t, ns); len(m) != 0 {
		t.Errorf("%d elements left after the deletes", len(m))
	}
	wantBatched(t, &log, "del", 3001)
}

// wantBatched: each family's set got its n elements in at most 3
// messages (1,153 to 1,875 elements each).
func wantBatched(t *testing.T, log *msgLog, verb string, n int) {
	t.Helper()
	for _, set := range []string{"apiban-bridge-0-v4", "apiban-bridge-0-v6"} {
		if msgs, elements := log.count(verb, set); elements != n || msgs < 2 || msgs > 3 {
			t.Errorf("%s %s: %d elements in %d messages, want %d in 2 or 3", verb, set, elements, msgs, n)
		}
	}
}

// count is a set's "Number of entries".
func count(t *testing.T, ns *netns.NS, set string) int {
	t.Helper()
	out := ns.Cmd(t, "ipset", "list", "-t", set)
	_, n, _ := strings.Cut(out, "Number of entries: ")
	var c int
	fmt.Sscan(n, &c)
	return c
}

// Deleting an element that timed out is no error, and the other deletes
// of the same message still happen.
func TestKernelIpsetDeleteExpired(t *testing.T) {
	netns.Require(t, "ipset", "iptables", "ip6tables")
	ns := netns.New(t, "ipse")
	ctx := context.Background()
	b := newBackend(t, ns)
	var log msgLog
	log.hook(b)
	if err := b.Reconcile(ctx, []bouncer.Element{el("192.0.2.1/32", time.Second, "apiban"),
		el("192.0.2.2/32", time.Hour, "apiban"), el("192.0.2.3/32", time.Hour, "apiban")}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for has(members(t, ns), "192.0.2.1/32") {
		if time.Now().After(deadline) {
			t.Fatal("192.0.2.1 did not time out")
		}
		time.Sleep(200 * time.Millisecond)
	}
	log.reset()
	if err := b.Apply(ctx, bouncer.Changes{Delete: []bouncer.Element{el("192.0.2.2/32", 0, "apiban"),
		el("192.0.2.1/32", 0, "apiban"), el("192.0.2.3/32", 0, "apiban")}}); err != nil {
		t.Fatalf("delete with an expired element: %v", err)
	}
	if m := members(t, ns); len(m) != 0 {
		t.Errorf("left: %v", m)
	}
	if msgs, n := log.count("del", "apiban-bridge-0-v4"); msgs != 1 || n != 3 {
		t.Errorf("%d elements in %d messages, want 3 in 1", n, msgs)
	}
}

func has(m map[netip.Prefix]string, p string) bool {
	_, ok := m[netip.MustParsePrefix(p)]
	return ok
}

// A refused element is named; the kernel kept those before it, not those
// after.
func TestKernelIpsetRefused(t *testing.T) {
	netns.Require(t, "ipset", "iptables", "ip6tables")
	ns := netns.New(t, "ipsr")
	ctx := context.Background()
	b := newBackend(t, ns)
	if err := b.Reconcile(ctx, []bouncer.Element{el("192.0.2.1/32", time.Hour, "apiban")}); err != nil {
		t.Fatal(err)
	}
	err := b.send(ctx, nl.IPSET_CMD_ADD, "apiban-bridge-0-v4", []bouncer.Element{
		el("198.51.100.1/32", time.Hour, "apiban"), el("0.0.0.0/0", time.Hour, "apiban"), el("198.51.100.2/32", time.Hour, "apiban")})
	if err == nil || !strings.Contains(err.Error(), "add 0.0.0.0/0 in apiban-bridge-0-v4") || !errors.Is(err, nl.IPSetError(nl.IPSET_ERR_INVALID_CIDR)) {
		t.Fatalf("error %v, want one naming 0.0.0.0/0 and invalid cidr", err)
	}
	wantMembers(t, members(t, ns), "192.0.2.1/32 in apiban-bridge-0-v4", "198.51.100.1/32 in apiban-bridge-0-v4")
	// A whole message refused (no such set) names no element; the
	// kernel's answer echoes the full-size request and is still read.
	var many []bouncer.Element
	for i := range 3000 {
		many = append(many, el(fmt.Sprintf("2001:db8::%x/128", i), time.Hour, ""))
	}
	err = b.send(ctx, nl.IPSET_CMD_ADD, "apiban-bridge-7-v6", many)
	if err == nil || !strings.Contains(err.Error(), "add 3000 elements in apiban-bridge-7-v6") || !errors.Is(err, unix.ENOENT) {
		t.Errorf("error %v", err)
	}
}

// The stock bouncer's sets and chain, and sets that only share our names
// without being recorded in our registry, survive a start and the
// cleanup; our sets skip the names they use.
func TestKernelIpsetLeftovers(t *testing.T) {
	netns.Require(t, "ipset", "iptables", "ip6tables")
	ns := netns.New(t, "ipso")
	ctx := context.Background()
	unrecorded := []string{"apiban-bridge-0-v4", "apiban-bridge-7-v6", "apiban-bridge-12-v4", "apiban-bridge-swap",
		"apiban-bridge-x", "apiban-bridge-0-v4x", "apiban-bridge-v4", "apiban-bridge-v6-new"}
	for _, c := range [][]string{
		{"ipset", "create", "apiban-bridge-0-v4", "hash:net", "family", "inet", "timeout", "0"},
		{"ipset", "add", "apiban-bridge-0-v4", "192.0.2.200", "timeout", "3600"},
		{"ipset", "create", "apiban-bridge-7-v6", "hash:net", "family", "inet6", "timeout", "0"},
		{"ipset", "create", "apiban-bridge-12-v4", "hash:net", "family", "inet", "timeout", "0"},
		{"ipset", "create", "apiban-bridge-swap", "hash:net", "timeout", "0"},
		{"ipset", "create", "apiban-bridge-x", "hash:net"},
		{"ipset", "create", "apiban-bridge-0-v4x", "hash:net"},
		{"ipset", "create", "apiban-bridge-v4", "hash:net", "family", "inet", "timeout", "0"},
		{"ipset", "create", "apiban-bridge-v6-new", "hash:net", "family", "inet6", "timeout", "0"},
		{"ipset", "create", "crowdsec-blacklists", "hash:net", "timeout", "0"},
		{"ipset", "add", "crowdsec-blacklists", "192.0.2.98", "timeout", "3600"},
		{"ipset", "create", "crowdsec-blacklists-0", "hash:net", "timeout", "0"},
		{"ipset", "add", "crowdsec-blacklists-0", "192.0.2.99", "timeout", "3600"},
		{"ipset", "create", "crowdsec6-blacklists-0", "hash:net", "family", "inet6", "timeout", "0"},
		{"iptables", "-w", "-N", "CROWDSEC_CHAIN"},
		{"iptables", "-w", "-A", "CROWDSEC_CHAIN", "-m", "set", "--match-set", "crowdsec-blacklists-0", "src", "-j", "DROP"},
		{"iptables", "-w", "-I", "INPUT", "-j", "CROWDSEC_CHAIN"},
	} {
		ns.Cmd(t, c...)
	}
	foreign := func() string {
		var out strings.Builder
		for _, s := range append([]string{"crowdsec-blacklists", "crowdsec-blacklists-0", "crowdsec6-blacklists-0"}, unrecorded...) {
			m, ok := ns.IpsetMembers(t, s)
			fmt.Fprintln(&out, s, ok, len(m), slices.Collect(func(yield func(netip.Prefix) bool) {
				for p := range m {
					yield(p)
				}
			}))
		}
		out.WriteString(ns.Cmd(t, "iptables", "-w", "-S", "CROWDSEC_CHAIN"))
		fmt.Fprintln(&out, strings.Count(ns.Cmd(t, "iptables", "-w", "-S", "INPUT"), "-j CROWDSEC_CHAIN"))
		return out.String()
	}
	before := foreign()
	ours := func() []string {
		var out []string
		for _, s := range ourSets(t, ns) {
			if !slices.Contains(unrecorded, s) {
				out = append(out, s)
			}
		}
		return out
	}

	b := newBackend(t, ns)
	if err := b.Reconcile(ctx, []bouncer.Element{el("198.51.100.7/32", time.Hour, "crowdsec"),
		el("192.0.2.1/32", time.Hour, "apiban"), el("2001:db8::1/128", time.Hour, "apiban")}); err != nil {
		t.Fatal(err)
	}
	// Slot 0's name is taken (apiban-bridge-0-v4): the new generation
	// takes the lowest slots whose sets do not exist, 1 and 2.
	if got, want := ours(), []string{"apiban-bridge-1-v4", "apiban-bridge-1-v6", "apiban-bridge-2-v4", "apiban-bridge-2-v6", "apiban-bridge-origins"}; !slices.Equal(got, want) {
		t.Errorf("sets %v, want %v", got, want)
	}
	reg := ns.Cmd(t, "ipset", "list", "apiban-bridge-origins")
	for _, want := range []string{"Type: bitmap:port", `10000 comment "crowdsec-apiban-bridge"`, `1 comment "apiban"`, `2 comment "crowdsec"`} {
		if !strings.Contains(reg, want) {
			t.Errorf("registry lacks %s:\n%s", want, reg)
		}
	}
	wantJumps(t, ns)
	for _, f := range families {
		r := rules(t, ns, f.iptables)
		if strings.Count(r, "-j DROP") != 2 || !strings.Contains(r, "-A APIBAN_BRIDGE -m conntrack --ctstate RELATED,ESTABLISHED --ctdir REPLY -m comment --comment crowdsec-apiban-bridge -j RETURN") {
			t.Errorf("%s rules:\n%s", f.iptables, r)
		}
	}

	// A restart (after a crash) replaces every recorded set, and only those.
	b2 := newBackend(t, ns)
	if err := b2.Reconcile(ctx, []bouncer.Element{el("192.0.2.1/32", time.Hour, "apiban")}); err != nil {
		t.Fatal(err)
	}
	if got, want := ours(), []string{"apiban-bridge-3-v4", "apiban-bridge-3-v6", "apiban-bridge-origins"}; !slices.Equal(got, want) {
		t.Errorf("sets after a restart %v, want %v", got, want)
	}
	if reg := ns.Cmd(t, "ipset", "list", "apiban-bridge-origins"); strings.Count(reg, " comment ") != 2 {
		t.Errorf("registry after a restart, want slot 3 and the marker:\n%s", reg)
	}
	if after := foreign(); after != before {
		t.Errorf("foreign objects changed:\n%s\nwas\n%s", after, before)
	}
	if err := b2.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
	if s := ours(); len(s) != 0 {
		t.Errorf("sets of ours after cleanup: %v", s)
	}
	if after := foreign(); after != before {
		t.Errorf("foreign objects changed by the cleanup:\n%s\nwas\n%s", after, before)
	}
}

// A registry or a chain with our name that we did not create (no marker)
// makes start and stop refuse, naming it, and changes nothing.
func TestKernelIpsetForeignUntouched(t *testing.T) {
	netns.Require(t, "ipset", "iptables", "ip6tables")
	ns := netns.New(t, "ipsf")
	ctx := context.Background()
	for _, c := range [][]string{
		{"ipset", "create", "apiban-bridge-origins", "bitmap:port", "range", "0-10000", "comment"},
		{"ipset", "add", "apiban-bridge-origins", "0", "comment", "someone else's"},
		{"ipset", "create", "apiban-bridge-0-v4", "hash:net", "family", "inet", "timeout", "0"},
		{"ipset", "add", "apiban-bridge-0-v4", "192.0.2.200", "timeout", "3600"},
		{"iptables", "-w", "-N", "APIBAN_BRIDGE"},
		{"iptables", "-w", "-A", "APIBAN_BRIDGE", "-p", "tcp", "--dport", "22", "-j", "ACCEPT"},
		{"iptables", "-w", "-I", "INPUT", "-j", "APIBAN_BRIDGE"},
	} {
		ns.Cmd(t, c...)
	}
	state := func() string {
		return ns.Cmd(t, "ipset", "list") + ns.Cmd(t, "iptables-save") + ns.Cmd(t, "ip6tables-save")
	}
	strip := regexp.MustCompile(`(?m)^#.*$|\[\d+:\d+\]|timeout \d+`)
	before := strip.ReplaceAllString(state(), "")
	chainErr := `ipset: iptables chain APIBAN_BRIDGE exists but crowdsec-apiban-bridge did not create it (no rule commented "crowdsec-apiban-bridge"): not touching it`
	regErr := `ipset: set apiban-bridge-origins exists but crowdsec-apiban-bridge did not create it (no element 10000 commented "crowdsec-apiban-bridge"): not touching it or any set named apiban-bridge-*`
	b := newBackend(t, ns)
	check := func(what, want string, err error) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", what, err, want)
		}
		if after := strip.ReplaceAllString(state(), ""); after != before {
			t.Errorf("%s changed the kernel:\n%s\nwas\n%s", what, after, before)
		}
	}
	check("start over a foreign chain", chainErr, b.Reconcile(ctx, []bouncer.Element{el("192.0.2.1/32", time.Hour, "apiban")}))
	check("stop over a foreign registry", regErr, b.Cleanup(ctx))
	ns.Cmd(t, "iptables", "-w", "-D", "INPUT", "-j", "APIBAN_BRIDGE")
	ns.Cmd(t, "iptables", "-w", "-F", "APIBAN_BRIDGE")
	ns.Cmd(t, "iptables", "-w", "-X", "APIBAN_BRIDGE")
	before = strip.ReplaceAllString(state(), "")
	check("start over a foreign registry", regErr, b.Reconcile(ctx, []bouncer.Element{el("192.0.2.1/32", time.Hour, "apiban")}))
	check("stop over a foreign registry", regErr, b.Cleanup(ctx))
	if _, err := b.Lookup(ctx, netip.MustParseAddr("192.0.2.200")); err == nil || !strings.Contains(err.Error(), regErr) {
		t.Errorf("lookup: %v, want %q", err, regErr)
	}
}

func TestKernelIpset100k(t *testing.T) {
	netns.Require(t, "ipset", "iptables", "ip6tables")
	ns := netns.New(t, "ipsb")
	b := newBackend(t, ns)
	var log msgLog
	log.hook(b)
	elems := make([]bouncer.Element, 0, 100_000)
	for i := range 100_000 {
		elems = append(elems, el(fmt.Sprintf("11.%d.%d.%d/32", i>>16, (i>>8)&0xff, i&0xff), time.Hour, "apiban"))
	}
	began := time.Now()
	if err := b.Reconcile(context.Background(), elems); err != nil {
		t.Fatal(err)
	}
	msgs, n := log.count("add", "apiban-bridge-0-v4")
	log.reset()
	t.Logf("100,000 elements: %s, %d messages", time.Since(began), msgs)
	if got := count(t, ns, "apiban-bridge-0-v4"); got != 100_000 || n != 100_000 || msgs > 100 {
		t.Errorf("%d elements in the set, %d sent in %d messages; want 100,000 in at most 100", got, n, msgs)
	}
	// Reload: a new generation (slot 1), then the old one goes.
	if err := b.Reconcile(context.Background(), elems[:10]); err != nil {
		t.Fatal(err)
	}
	if msgs, _ := log.count("add", "apiban-bridge-1-v4"); msgs != 1 {
		t.Errorf("reload: %d messages to the new generation's set, want 1", msgs)
	}
	if n := len(members(t, ns)); n != 10 {
		t.Errorf("%d members after the reload, want 10", n)
	}
	if got, want := ourSets(t, ns), []string{"apiban-bridge-1-v4", "apiban-bridge-1-v6", "apiban-bridge-origins"}; !slices.Equal(got, want) {
		t.Errorf("sets after the reload: %v, want %v", got, want)
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
	if s := sets(t, ns); len(s) != 0 {
		t.Fatalf("Lookup created %v", s)
	}
	if err := b.Reconcile(ctx, []bouncer.Element{
		el("198.51.100.0/24", 4*time.Hour, "CAPI"), el("198.51.100.7/32", time.Hour, "apiban"), el("192.0.2.1/32", time.Hour, "apiban"),
		el("2001:db8::/32", 2*time.Hour, "CAPI"), el("2001:db8::1/128", time.Hour, "apiban"),
	}); err != nil {
		t.Fatal(err)
	}
	before := members(t, ns)
	// Another process (check) knows only what the kernel says.
	other := newBackend(t, ns)
	type m struct {
		prefix, set, origin string
		left                time.Duration
	}
	for _, c := range []struct {
		addr string
		want []m
	}{
		{"198.51.100.77", []m{{"198.51.100.0/24", "apiban-bridge-0-v4", "CAPI", 4 * time.Hour}}},
		{"198.51.100.7", []m{{"198.51.100.7/32", "apiban-bridge-1-v4", "apiban", time.Hour}, {"198.51.100.0/24", "apiban-bridge-0-v4", "CAPI", 4 * time.Hour}}},
		{"192.0.2.1", []m{{"192.0.2.1/32", "apiban-bridge-1-v4", "apiban", time.Hour}}},
		{"::ffff:192.0.2.1", []m{{"192.0.2.1/32", "apiban-bridge-1-v4", "apiban", time.Hour}}},
		{"2001:db8:ffff::9", []m{{"2001:db8::/32", "apiban-bridge-0-v6", "CAPI", 2 * time.Hour}}},
		{"192.0.2.2", nil},
		{"2001:db9::1", nil},
	} {
		got, err := other.Lookup(ctx, netip.MustParseAddr(c.addr))
		if err != nil {
			t.Fatalf("%s: %v", c.addr, err)
		}
		if len(got) != len(c.want) {
			t.Errorf("%s: %+v, want %v", c.addr, got, c.want)
			continue
		}
		for i, w := range c.want {
			if g := got[i]; g.Set != w.set || g.Origin != w.origin || g.Prefix.String() != w.prefix || g.Left > w.left || g.Left < w.left-time.Minute {
				t.Errorf("%s: match %d is %+v, want %+v", c.addr, i, g, w)
			}
		}
	}
	if after := members(t, ns); len(after) != len(before) {
		t.Errorf("Lookup changed the sets: %v, was %v", after, before)
	}
	// Loaded with nothing in it: not ErrNotLoaded.
	if err := b.Reconcile(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if got, err := other.Lookup(ctx, netip.MustParseAddr("192.0.2.1")); err != nil || len(got) != 0 {
		t.Errorf("empty load: %v, %v", got, err)
	}
}

// TestKernelIpsetReadsDuringChanges: the metrics (Dropped) and check
// (Lookup) read while ticks and full loads change the sets, from other
// goroutines, as the daemon's scrapes do. Run with -race; a read may fail
// while the registry is being replaced, but nothing may race or hang.
func TestKernelIpsetReadsDuringChanges(t *testing.T) {
	netns.Require(t, "ipset", "iptables", "ip6tables")
	ns := netns.New(t, "ipsrace")
	ctx := context.Background()
	b := newBackend(t, ns)
	if err := b.Reconcile(ctx, []bouncer.Element{el("192.0.2.1/32", time.Hour, "apiban")}); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	reads := 0
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			_, _ = b.Dropped(ctx)
			_, _ = b.Lookup(ctx, netip.MustParseAddr("192.0.2.1"))
			reads++
		}
	})
	for i := range 10 {
		origin := fmt.Sprintf("origin-%d", i)
		if err := b.Apply(ctx, bouncer.Changes{Add: []bouncer.Element{el(fmt.Sprintf("198.51.100.%d/32", i), time.Hour, origin)}}); err != nil {
			t.Fatal(err)
		}
		if i%3 == 0 {
			if err := b.Reconcile(ctx, []bouncer.Element{el("192.0.2.1/32", time.Hour, "apiban"), el("198.51.100.1/32", time.Hour, origin)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	close(stop)
	wg.Wait()
	if reads == 0 {
		t.Error("no read ran alongside the changes")
	}
	got, err := b.Lookup(ctx, netip.MustParseAddr("192.0.2.1"))
	if err != nil || len(got) != 1 || got[0].Origin != "apiban" {
		t.Errorf("after the changes: %+v, %v", got, err)
	}
}

// TestKernelIpsetFullLoadKeepsDropping: while full loads rebuild the sets
// and the chain again and again, a banned address sending without pause
// gets nothing through: the swap keeps each set whole, and the chain and
// jumps are replaced in one iptables-restore commit.
func TestKernelIpsetFullLoadKeepsDropping(t *testing.T) {
	netns.Require(t, "ipset", "iptables", "ip6tables", "iptables-restore", "ip6tables-restore")
	ns := netns.New(t, "ipsgap")
	ctx := context.Background()
	for _, a := range []string{"192.0.2.1/32", "203.0.113.50/32"} {
		ns.Cmd(t, "ip", "addr", "add", a, "dev", "lo")
	}
	b := newBackend(t, ns)
	load := func(origin string) {
		t.Helper()
		if err := b.Reconcile(ctx, []bouncer.Element{el("192.0.2.1/32", time.Hour, origin), el("198.51.100.0/24", time.Hour, "z")}); err != nil {
			t.Fatal(err)
		}
	}
	load("apiban")
	var in, out *net.UDPConn
	var err error
	ns.Do(t, func() {
		if in, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(203, 0, 113, 50), Port: 5060}); err != nil {
			return
		}
		out, err = net.DialUDP("udp4", &net.UDPAddr{IP: net.IPv4(192, 0, 2, 1)}, &net.UDPAddr{IP: net.IPv4(203, 0, 113, 50), Port: 5060})
	})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	defer out.Close()

	var received atomic.Int64
	go func() {
		buf := make([]byte, 64)
		for {
			if _, _, err := in.ReadFrom(buf); err != nil {
				return // closed
			}
			received.Add(1)
		}
	}()
	stop := make(chan struct{})
	var sent atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; i < 1_000_000; i++ { // bounded, in case stop never comes
			select {
			case <-stop:
				return
			default:
			}
			if _, err := out.Write([]byte("INVITE")); err == nil {
				sent.Add(1)
			}
			if i%64 == 0 {
				time.Sleep(50 * time.Microsecond)
			}
		}
	})
	for i := range 10 {
		// Alternate the origin so that the slots change at every load.
		load([]string{"apiban", "zzz"}[i%2])
	}
	close(stop)
	wg.Wait()
	time.Sleep(100 * time.Millisecond)
	if sent.Load() == 0 {
		t.Fatal("nothing was sent")
	}
	if n := received.Load(); n != 0 {
		t.Errorf("%d of %d packets from the banned address got through during the full loads", n, sent.Load())
	}
	// The probe works: without our objects, the same packets arrive.
	if err := b.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		_, _ = out.Write([]byte("INVITE"))
	}
	deadline := time.Now().Add(2 * time.Second)
	for received.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if received.Load() == 0 {
		t.Error("the probe's packets do not arrive even without the bouncer")
	}
}
