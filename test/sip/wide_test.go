package sip

import (
	"slices"
	"testing"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/bridgetest"
)

// The mirror serves what the embedded bouncer would enforce: a range
// wider than bouncer.min_prefix_v4 (set to /15 here) or min_prefix_v6
// (its default, /32) is neither listed nor matched by check, whatever its
// origin, even with the bouncer off; a range at the minimum is served.
func TestMirrorLeavesOutRangesTheBouncerRefuses(t *testing.T) {
	e := newEnv(t, freePort(t, "127.0.0.1"), func(c *bridgetest.Config) { c.Bouncer.MinPrefixV4 = 15 })
	for _, r := range []string{"203.0.0.0/14", "203.4.0.0/15", "2001:db8::/31", "2001:db8::/32"} {
		e.lapi.Cscli(t, "decisions", "add", "-r", r, "-d", "1h", "-R", "wide range test")
	}
	e.start()
	code, body := e.get("/ipset/" + mirrorKey + "/list")
	got := lines(body)
	slices.Sort(got)
	if want := []string{"2001:db8::/32", "203.4.0.0/15"}; code != 200 || !slices.Equal(got, want) {
		t.Fatalf("ipset list: %d %q, want %q (the /14 and the /31 are too wide)", code, got, want)
	}
	for _, c := range []struct {
		ip, want string
	}{
		{"203.1.2.3", `{"ipaddress":["not blocked"],"ID":"none"}`}, // only in the /14
		{"203.5.2.3", `{"ipaddress":["203.5.2.3"],"ID":`},
		{"2001:db9::1", `{"ipaddress":["not blocked"],"ID":"none"}`}, // only in the /31
		{"2001:db8::1", `{"ipaddress":["2001:db8::1"],"ID":`},
	} {
		if _, body := e.get("/api/" + mirrorKey + "/check/" + c.ip); len(body) < len(c.want) || body[:len(c.want)] != c.want {
			t.Errorf("check %s: %s, want %s...", c.ip, body, c.want)
		}
	}
}
