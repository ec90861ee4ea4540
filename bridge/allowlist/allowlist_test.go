package allowlist

import (
	"net/netip"
	"testing"
)

func TestMatch(t *testing.T) {
	set := New(
		[]netip.Prefix{netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("2001:db8:1::5/128")},
		[]Entry{{Prefix: netip.MustParsePrefix("203.0.113.7/32"), Source: "trunks"}},
	)
	for _, tc := range []struct {
		in, reason string
	}{
		{"10.1.2.3/32", ReasonNotPublic},
		{"172.31.255.255/32", ReasonNotPublic},
		{"192.168.0.1/32", ReasonNotPublic},
		{"127.0.0.1/32", ReasonNotPublic},
		{"169.254.1.1/32", ReasonNotPublic},
		{"224.0.0.5/32", ReasonNotPublic},
		{"0.0.0.0/32", ReasonNotPublic},
		{"100.64.0.1/32", ReasonNotPublic},
		{"100.127.255.254/32", ReasonNotPublic},
		{"fd00::1/128", ReasonNotPublic},
		{"fe80::1/128", ReasonNotPublic},
		{"::1/128", ReasonNotPublic},
		{"ff02::1/128", ReasonNotPublic},
		{"::/128", ReasonNotPublic},
		{"0.1.2.3/32", ReasonNotPublic},   // "this network"
		{"240.0.0.0/24", ReasonNotPublic}, // reserved
		{"255.255.255.255/32", ReasonNotPublic},
		{"64:ff9b::/96", ReasonNotPublic},    // NAT64: all of IPv4
		{"64:ff9b:1::/48", ReasonNotPublic},  // local-use NAT64
		{"2002:a00:1::/48", ReasonNotPublic}, // 6to4 of 10.0.0.1
		{"::a00:1/128", ReasonNotPublic},     // IPv4-compatible
		{"100::/64", ReasonNotPublic},        // discard-only
		{"192.0.2.1/32", ""},                 // documentation ranges stay bannable
		{"2001:db8::1/128", ""},
		{"10.0.0.0/7", ReasonNotPublic}, // a range that swallows private space
		{"198.51.100.77/32", ReasonConfig},
		{"198.51.0.0/16", ReasonConfig}, // wider than the allowlisted /24
		{"2001:db8:1::/64", ReasonConfig},
		{"203.0.113.7/32", ReasonLAPI},
		{"203.0.113.0/24", ReasonLAPI},
		{"203.0.113.8/32", ""},
		{"100.128.0.1/32", ""},
		{"8.8.8.8/32", ""},
		{"2001:db8:2::1/128", ""},
	} {
		reason, detail, ok := set.Match(netip.MustParsePrefix(tc.in))
		if reason != tc.reason || ok != (tc.reason != "") {
			t.Errorf("%s: got (%q, %q, %v), want reason %q", tc.in, reason, detail, ok, tc.reason)
		}
	}
}

func TestZeroSetStillRefusesNonPublic(t *testing.T) {
	var s Set
	if _, _, ok := s.Match(netip.MustParsePrefix("192.168.1.1/32")); !ok {
		t.Fatal("a zero set must refuse private addresses")
	}
	if _, _, ok := s.Match(netip.MustParsePrefix("8.8.4.4/32")); ok {
		t.Fatal("a zero set must allow public addresses")
	}
}
