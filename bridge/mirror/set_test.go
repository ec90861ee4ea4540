package mirror

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/crowdsecurity/crowdsec/pkg/models"
)

// An entry several decisions ban keeps the newest one's cursor while any
// is left, and goes with the last; a decision ID given a new value moves.
func TestSharedEntries(t *testing.T) {
	s := readySet(decision(1, "Ip", "203.0.113.1"), decision(2, "Ip", "203.0.113.2"),
		decision(3, "Ip", "203.0.113.1"), decision(4, "Ip", "203.0.113.1"))
	step := func(what string, resp *models.DecisionsStreamResponse, want string, cursor string) {
		t.Helper()
		s.Apply(resp)
		if got := strings.Join(s.All(), " "); got != want {
			t.Fatalf("%s: served %q, want %q", what, got, want)
		}
		id, ok := s.Find(netip.MustParseAddr("203.0.113.1"))
		if id != cursor || ok != (cursor != "") {
			t.Fatalf("%s: 203.0.113.1 found at %q %v, want %q", what, id, ok, cursor)
		}
	}
	del := func(id int64) *models.DecisionsStreamResponse {
		return &models.DecisionsStreamResponse{Deleted: []*models.Decision{decision(id, "Ip", "")}}
	}
	step("start", nil, "203.0.113.2 203.0.113.1", "1004")
	step("a middle decision deleted", del(3), "203.0.113.2 203.0.113.1", "1004")
	step("the newest deleted", del(4), "203.0.113.1 203.0.113.2", "1001")
	step("decision 1 moved to another address", &models.DecisionsStreamResponse{New: []*models.Decision{decision(1, "Ip", "203.0.113.9")}},
		"203.0.113.9 203.0.113.2", "")
}

// A key is its prefix, the address family included.
func TestKeyRoundTrip(t *testing.T) {
	for _, s := range []string{"203.0.113.7/32", "198.51.100.0/24", "2001:db8::1/128", "2001:db8::/32", "::ffff:198.51.100.0/120", "0.0.0.0/0", "::/0"} {
		p := netip.MustParsePrefix(s)
		if got := keyOf(p).prefix(); got != p {
			t.Errorf("%s came back as %s", p, got)
		}
	}
	if keyOf(netip.MustParsePrefix("198.51.100.7/32")) == keyOf(netip.MustParsePrefix("::ffff:198.51.100.7/128")) {
		t.Error("an IPv4 address and its IPv4-mapped IPv6 form share a key")
	}
}
