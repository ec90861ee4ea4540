package lapi

import (
	"net/netip"
	"testing"
	"time"

	"github.com/crowdsecurity/crowdsec/pkg/models"
)

// TestActiveDecisionNormalForm: a decision read back from LAPI names the
// prefix the feed's entry would, so that the state and LAPI compare
// equal: IPv4-mapped values are unmapped, host bits masked, zones and
// what is not an address skipped.
func TestActiveDecisionNormalForm(t *testing.T) {
	for value, want := range map[string]string{
		"203.0.113.5":            "203.0.113.5/32",
		"::ffff:203.0.113.5":     "203.0.113.5/32",
		"::ffff:203.0.113.0/120": "203.0.113.0/24",
		"198.51.100.9/24":        "198.51.100.0/24",
		"2001:db8::1":            "2001:db8::1/128",
		"fe80::1%eth0":           "",
		"example.org":            "",
	} {
		v, d := value, "1h"
		p, left, ok := activeDecision(&models.Decision{Value: &v, Duration: &d})
		switch {
		case want == "" && ok:
			t.Errorf("%q: got %s, want it skipped", value, p)
		case want != "" && (!ok || p != netip.MustParsePrefix(want) || left != time.Hour):
			t.Errorf("%q: got %s %s %v, want %s 1h", value, p, left, ok, want)
		}
	}
}
