package neverban

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Every special-purpose range of IANA's registries that is never a real
// source, each checked at its first and last address and as a whole.
var specialRanges = []string{
	"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
	"192.0.0.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15", "224.0.0.0/4", "240.0.0.0/4",
	"255.255.255.255/32",
	"::/128", "::1/128", "::/96", "64:ff9b::/96", "64:ff9b:1::/48", "100::/64",
	"2001:1::1/128", "2001:1::2/128", "2001:1::3/128", "2001:2::/48", "2001:10::/28", "5f00::/16",
	"fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8",
}

func TestSpecialRangesNeverBanned(t *testing.T) {
	s := New()
	for _, r := range specialRanges {
		p := netip.MustParsePrefix(r)
		for _, q := range []netip.Prefix{p, single(p.Addr()), single(last(p))} {
			reason, detail, ok := s.Match(q)
			if !ok || reason != ReasonSpecial || !detail.Overlaps(q) {
				t.Errorf("Match(%s) (of %s) = %q %s %v, want special", q, r, reason, detail, ok)
			}
		}
	}
}

// The table holds every range listed above, and nothing else.
func TestSpecialTableIsTheList(t *testing.T) {
	var got []string
	for _, en := range SpecialEntries() {
		got = append(got, en.Prefix.String())
		if en.Note == "" {
			t.Errorf("%s has no note", en.Prefix)
		}
	}
	// IPv4-mapped addresses are judged as the IPv4 they map (below).
	want := append(slices.Clone(specialRanges), "::ffff:0.0.0.0/96")
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("table %v\nwant  %v", got, want)
	}
}

func TestExamplesFromTheIssue(t *testing.T) {
	s := New()
	for _, c := range []struct{ in, detail string }{
		{"0.1.2.3/32", "0.0.0.0/8"},
		{"240.0.0.0/24", "240.0.0.0/4"},
		{"255.255.255.255/32", "255.255.255.255/32"},
		{"64:ff9b::102:304/128", "64:ff9b::/96"},
		{"64:ff9b:1::/48", "64:ff9b:1::/48"},
		{"2002:a00:1::/48", "2002:a00::/24"}, // 6to4 of 10.0.0.1
		{"2002:7f00:1::1/128", "2002:7f00::/24"},
		{"2002::/16", "2002::/24"}, // covers 0.0.0.0/8 among others
		{"::a00:1/128", "::/96"},   // IPv4-compatible
		{"100::/64", "100::/64"},
		{"::ffff:10.1.2.3/128", "10.0.0.0/8"}, // IPv4-mapped: judged as IPv4
		{"::ffff:0:0/96", "0.0.0.0/8"},        // all of IPv4
		{"11.0.0.0/7", "10.0.0.0/8"},          // a range overlapping one
		{"2000::/3", "2001:1::1/128"},
	} {
		reason, detail, ok := s.Match(netip.MustParsePrefix(c.in))
		if !ok || reason != ReasonSpecial || detail.String() != c.detail {
			t.Errorf("Match(%s) = %q %s %v, want special %s", c.in, reason, detail, ok, c.detail)
		}
	}
}

// Documentation ranges are what labs and tests use as attackers, and
// ordinary public space must stay bannable too.
func TestBannable(t *testing.T) {
	s := New()
	for _, r := range []string{
		"192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32", "3fff::/20",
		"192.0.2.2/32", "203.0.113.7/32", "2001:db8::1/128",
		"1.2.3.4/32", "11.0.0.0/8", "2a00:1450::/32", "2001::/32", // Teredo is a real source
		"2002:102:304::/48",  // 6to4 of 1.2.3.4
		"::ffff:1.2.3.4/128", // IPv4-mapped public
		"192.31.196.0/24",    // AS112: globally reachable
		"2001:20::/28",       // ORCHIDv2: globally reachable
		"64:ff9b:2::/48",     // just past the local-use NAT64 /48
		"100:0:0:1::/64",     // just past discard-only
		"223.255.255.255/32", // just below multicast
		"100.128.0.0/10",     // just past CGNAT
		"198.20.0.0/16",      // just past benchmarking
	} {
		p := netip.MustParsePrefix(r)
		if reason, detail, ok := s.Match(p); ok {
			t.Errorf("Match(%s) = %q %s: documentation and public ranges must stay bannable", r, reason, detail)
		}
	}
}

func TestSetEntries(t *testing.T) {
	s := New(Entry{Prefix: netip.MustParsePrefix("198.51.100.7/32"), Reason: ReasonSelf}).
		With(ReasonAllowlist, netip.MustParsePrefix("203.0.113.0/28"))
	for _, c := range []struct {
		in, reason, detail string
		ok                 bool
	}{
		{"198.51.100.7/32", ReasonSelf, "198.51.100.7/32", true},
		{"198.51.100.0/24", ReasonSelf, "198.51.100.7/32", true},
		{"198.51.100.8/32", "", "invalid Prefix", false},
		{"203.0.113.5/32", ReasonAllowlist, "203.0.113.0/28", true},
		{"10.0.0.1/32", ReasonSpecial, "10.0.0.0/8", true}, // the table comes first
	} {
		reason, detail, ok := s.Match(netip.MustParsePrefix(c.in))
		if reason != c.reason || detail.String() != c.detail || ok != c.ok {
			t.Errorf("Match(%s) = %q %s %v, want %q %s %v", c.in, reason, detail, ok, c.reason, c.detail, c.ok)
		}
	}
	var zero *Set
	if _, _, ok := zero.Match(netip.MustParsePrefix("10.0.0.1/32")); !ok {
		t.Error("a nil set must still hold the special table")
	}
}

func TestDiscover(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	h := Host{
		InterfaceAddrs: func() ([]net.Addr, error) {
			return []net.Addr{&net.IPNet{IP: net.ParseIP("198.51.100.2"), Mask: net.CIDRMask(24, 32)},
				&net.IPNet{IP: net.ParseIP("2001:db8::2"), Mask: net.CIDRMask(64, 128)},
				&net.IPAddr{IP: net.ParseIP("127.0.0.1")}}, nil
		},
		Resolver: fakeResolver{"lapi.example": {netip.MustParseAddr("203.0.113.9"), netip.MustParseAddr("::ffff:203.0.113.10")}},
		LAPIURLs: []string{"https://lapi.example:8080/", "http://198.51.100.77:8080", "http://[2001:db8::77]:8080/"},
		RouteV4: write("route", "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"+
			"eth0\t00000000\t0164A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"+ // default via 192.168.100.1
			"eth0\t0064A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"),
		RouteV6: write("ipv6_route", "00000000000000000000000000000000 00 00000000000000000000000000000000 00 20010db8000000000000000000000001 00000400 00000001 00000000 00000003 eth0\n"+
			"20010db8000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001 eth0\n"),
		ResolvConf: write("resolv.conf", "# comment\nsearch example\nnameserver 203.0.113.53\nnameserver 2001:db8::53\noptions edns0\n"),
	}
	got, err := Discover(context.Background(), h)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"self 198.51.100.2/32", "self 2001:db8::2/128", "self 127.0.0.1/32",
		"lapi 203.0.113.9/32", "lapi 203.0.113.10/32", "lapi 198.51.100.77/32", "lapi 2001:db8::77/128",
		"gateway 192.168.100.1/32", "gateway 2001:db8::1/128", "resolver 203.0.113.53/32", "resolver 2001:db8::53/128",
	}
	var gotS []string
	for _, en := range got {
		gotS = append(gotS, en.Reason+" "+en.Prefix.String())
	}
	if !slices.Equal(gotS, want) {
		t.Errorf("Discover =\n%v\nwant\n%v", gotS, want)
	}
}

// What cannot be read is an error, and what can is still returned.
func TestDiscoverPartial(t *testing.T) {
	h := Host{
		InterfaceAddrs: func() ([]net.Addr, error) { return nil, errors.New("no netlink") },
		Resolver:       fakeResolver{},
		LAPIURLs:       []string{"http://lapi.invalid:8080"},
		RouteV4:        "/nonexistent/route", RouteV6: "/nonexistent/ipv6_route",
		ResolvConf: writeTemp(t, "nameserver 203.0.113.53\n"),
	}
	got, err := Discover(context.Background(), h)
	if len(got) != 1 || got[0].Prefix.String() != "203.0.113.53/32" {
		t.Errorf("Discover = %v, want the resolver only", got)
	}
	for _, want := range []string{"no netlink", `"lapi.invalid"`, "/nonexistent/route"} {
		if err == nil || !contains(err.Error(), want) {
			t.Errorf("error %v does not name %s", err, want)
		}
	}
}

type fakeResolver map[string][]netip.Addr

func (f fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := f[host]; ok {
		return a, nil
	}
	return nil, errors.New("no such host")
}

func writeTemp(t *testing.T, text string) string {
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func single(a netip.Addr) netip.Prefix { return netip.PrefixFrom(a, a.BitLen()) }

func last(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}
