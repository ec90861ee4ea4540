package source

import (
	"net/netip"
	"testing"
)

// TestParse: every form the parsers accept or refuse, and what each of
// ParsePrefix, ParseUnmasked, ParseCIDR and ParseAddr makes of it ("" is
// a refusal).
func TestParse(t *testing.T) {
	cases := []struct {
		in                           string
		prefix, unmasked, cidr, addr string
	}{
		// IPv4
		{"192.0.2.1", "192.0.2.1/32", "192.0.2.1/32", "", "192.0.2.1"},
		{"0.0.0.0", "0.0.0.0/32", "0.0.0.0/32", "", "0.0.0.0"},
		{"192.0.2.0/24", "192.0.2.0/24", "192.0.2.0/24", "192.0.2.0/24", ""},
		{"192.0.2.1/32", "192.0.2.1/32", "192.0.2.1/32", "192.0.2.1/32", ""},
		{"0.0.0.0/0", "0.0.0.0/0", "0.0.0.0/0", "0.0.0.0/0", ""},
		// host bits set
		{"192.0.2.77/24", "192.0.2.0/24", "192.0.2.77/24", "192.0.2.77/24", ""},
		{"10.0.0.1/1", "0.0.0.0/1", "10.0.0.1/1", "10.0.0.1/1", ""},
		{"2001:db8::1/64", "2001:db8::/64", "2001:db8::1/64", "2001:db8::1/64", ""},
		// IPv6
		{"2001:db8::1", "2001:db8::1/128", "2001:db8::1/128", "", "2001:db8::1"},
		{"2001:DB8::1", "2001:db8::1/128", "2001:db8::1/128", "", "2001:db8::1"},
		{"::", "::/128", "::/128", "", "::"},
		{"2001:db8::/32", "2001:db8::/32", "2001:db8::/32", "2001:db8::/32", ""},
		// IPv4-mapped IPv6 becomes IPv4
		{"::ffff:192.0.2.1", "192.0.2.1/32", "192.0.2.1/32", "", "192.0.2.1"},
		{"::ffff:c000:201", "192.0.2.1/32", "192.0.2.1/32", "", "192.0.2.1"},
		{"::ffff:192.0.2.1/120", "192.0.2.0/24", "192.0.2.1/24", "192.0.2.1/24", ""},
		{"::ffff:192.0.2.1/128", "192.0.2.1/32", "192.0.2.1/32", "192.0.2.1/32", ""},
		{"::ffff:0.0.0.0/96", "0.0.0.0/0", "0.0.0.0/0", "0.0.0.0/0", ""},
		{"::ffff:192.0.2.1/95", "", "", "", ""},
		// zones
		{"fe80::1%eth0", "", "", "", ""},
		{"fe80::1%eth0/64", "", "", "", ""},
		// whitespace is the caller's to trim
		{" 192.0.2.1", "", "", "", ""},
		{"192.0.2.1\n", "", "", "", ""},
		{"192.0.2.0/24 ", "", "", "", ""},
		{"192.0.2.1 198.51.100.1", "", "", "", ""},
		// not addresses
		{"", "", "", "", ""},
		{"none", "", "", "", ""},
		{"1.2.3", "", "", "", ""},
		{"1.2.3.4.5", "", "", "", ""},
		{"256.1.1.1", "", "", "", ""},
		{"01.2.3.4", "", "", "", ""},
		{"192.0.2.1:5060", "", "", "", ""},
		{"[2001:db8::1]", "", "", "", ""},
		{"192.0.2.1/33", "", "", "", ""},
		{"2001:db8::1/129", "", "", "", ""},
		{"192.0.2.1/", "", "", "", ""},
		{"/24", "", "", "", ""},
		{"192.0.2.1/-1", "", "", "", ""},
		{"192.0.2.1/24/8", "", "", "", ""},
		{"192.0.2.1\x00", "", "", "", ""},
	}
	for _, tc := range cases {
		p, err := ParsePrefix(tc.in)
		wantPrefix(t, "ParsePrefix", tc.in, p, err, tc.prefix)
		p, err = ParseUnmasked(tc.in)
		wantPrefix(t, "ParseUnmasked", tc.in, p, err, tc.unmasked)
		p, err = ParseCIDR(tc.in)
		wantPrefix(t, "ParseCIDR", tc.in, p, err, tc.cidr)
		a, err := ParseAddr(tc.in)
		switch {
		case tc.addr == "" && err == nil:
			t.Errorf("ParseAddr(%q) = %s, want an error", tc.in, a)
		case tc.addr != "" && (err != nil || a != netip.MustParseAddr(tc.addr)):
			t.Errorf("ParseAddr(%q) = %s, %v; want %s", tc.in, a, err, tc.addr)
		}
	}
}

func wantPrefix(t *testing.T, fn, in string, got netip.Prefix, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err == nil:
		t.Errorf("%s(%q) = %s, want an error", fn, in, got)
	case want != "" && err != nil:
		t.Errorf("%s(%q): %v, want %s", fn, in, err, want)
	case want != "" && got.String() != want:
		t.Errorf("%s(%q) = %s, want %s", fn, in, got, want)
	}
}

func TestIsRange(t *testing.T) {
	for in, want := range map[string]bool{
		"192.0.2.1/32": false, "192.0.2.0/31": true, "2001:db8::1/128": false, "2001:db8::/127": true, "0.0.0.0/0": true,
	} {
		if got := IsRange(netip.MustParsePrefix(in)); got != want {
			t.Errorf("IsRange(%s) = %v, want %v", in, got, want)
		}
	}
}
