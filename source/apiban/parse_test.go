package apiban

import (
	"net/netip"
	"testing"
)

func TestParseEntry(t *testing.T) {
	valid := []struct{ in, want string }{
		{"1.2.3.4", "1.2.3.4/32"},
		{"  1.2.3.4\t\n", "1.2.3.4/32"},
		{"2001:db8::1", "2001:db8::1/128"},
		{"2001:DB8::1", "2001:db8::1/128"},
		{"::ffff:1.2.3.4", "1.2.3.4/32"},
		{"::ffff:102:304", "1.2.3.4/32"},
		{"192.0.2.0/24", "192.0.2.0/24"},
		{"192.0.2.77/24", "192.0.2.0/24"},
		{"1.2.3.4/32", "1.2.3.4/32"},
		{"2001:db8::1/64", "2001:db8::/64"},
		{"::ffff:1.2.3.4/120", "1.2.3.0/24"},
		{"::ffff:1.2.3.4/128", "1.2.3.4/32"},
		{"0.0.0.0", "0.0.0.0/32"},
		{"::", "::/128"},
		{"10.0.0.1/1", "0.0.0.0/1"},
	}
	for _, tc := range valid {
		got, err := ParseEntry(tc.in)
		if err != nil {
			t.Errorf("ParseEntry(%q) error %v, want %s", tc.in, err, tc.want)
			continue
		}
		if want := netip.MustParsePrefix(tc.want); got != want {
			t.Errorf("ParseEntry(%q) = %s, want %s", tc.in, got, want)
		}
	}
	invalid := []string{
		"", "   ", "no new bans", "none", "1.2.3", "1.2.3.4.5", "256.1.1.1",
		"01.2.3.4", "1.2.3.4:5060", "1.2.3.4/33", "1.2.3.4/", "/24", "1.2.3.4/-1",
		"2001:db8::1/129", "fe80::1%eth0", "fe80::1%eth0/64", "0.0.0.0/0", "::/0",
		"1.2.3.4/24/8", "::ffff:1.2.3.4/95", "1.2.3.4 5.6.7.8", "[2001:db8::1]",
		"http://1.2.3.4", "1.2.3.4\x00",
	}
	for _, in := range invalid {
		if got, err := ParseEntry(in); err == nil {
			t.Errorf("ParseEntry(%q) = %s, want an error", in, got)
		}
	}
}

// FuzzParseEntry checks the invariants the bridge relies on: a valid
// result is masked, unmapped and not /0, and parsing is idempotent.
func FuzzParseEntry(f *testing.F) {
	for _, s := range []string{"1.2.3.4", "::ffff:1.2.3.4/120", "2001:db8::1/64", "0.0.0.0/0", " 1.1.1.1 "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseEntry(s)
		if err != nil {
			return
		}
		if !p.IsValid() || p != p.Masked() || p.Addr().Is4In6() || p.Bits() == 0 || p.Addr().Zone() != "" {
			t.Fatalf("ParseEntry(%q) = %s breaks an invariant", s, p)
		}
		again, err := ParseEntry(p.String())
		if err != nil || again != p {
			t.Fatalf("ParseEntry(%q) = %s, but reparsing gives %s, %v", s, p, again, err)
		}
	})
}
