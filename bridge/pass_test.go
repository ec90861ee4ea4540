package bridge

import (
	"net/netip"
	"testing"
)

// TestPrefixSet: single IPv4 addresses, other IPv4 prefixes and IPv6 are
// kept in different maps; none may be taken for another.
func TestPrefixSet(t *testing.T) {
	s := newPrefixSet()
	all := []string{"192.0.2.1/32", "192.0.2.1/31", "192.0.2.0/24", "0.0.0.0/0", "0.0.0.0/32",
		"::ffff:192.0.2.1/128", "2001:db8::1/128", "2001:db8::/48"}
	for _, p := range all {
		if !s.add(netip.MustParsePrefix(p)) {
			t.Fatalf("%s reported as seen before it was added", p)
		}
	}
	for _, p := range all {
		if s.add(netip.MustParsePrefix(p)) {
			t.Fatalf("%s reported as new the second time", p)
		}
	}
	if n := len(s.single) + len(s.v4) + len(s.other); n != len(all) {
		t.Fatalf("set holds %d, want %d", n, len(all))
	}
}
