package faults

import (
	"maps"
	"strings"
	"testing"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/bridgetest"
)

// The poisoned-feed guards through the binary and the real LAPI: ranges
// wider than the minimum are refused, and a flood past the cap stops the
// sync loudly with nothing pushed and the cursor not moved.
func TestPoisonedFeedGuards(t *testing.T) {
	r := newRig(t, rigOpts{maxNewPerSync: 200})
	r.feed(150, 81)
	r.sim.Add("45.1.0.0/16", "2a00:1450::/32", "45.2.3.0/24") // the /24 is allowed
	r.want["45.2.3.0/24"] = true
	code, out := r.once()
	if code != 0 {
		t.Fatalf("first sync:\n%s", out)
	}
	for _, want := range []string{"too_wide=2", "pushed=151", "prefix wider than decisions.min_prefix_v4/v6: refused"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	r.waitConverged(nil, 0)
	cursor := r.savedState().Cursor

	// A flood: 300 new addresses in one sync, over the cap of 200.
	before := maps.Clone(r.want)
	r.feed(300, 82)
	all := r.want
	code, out = r.once()
	if code == 0 || !strings.Contains(out, "decisions.max_new_per_sync (200)") || !strings.Contains(out, "flood=true") {
		t.Fatalf("a flood must fail the sync loudly (exit %d):\n%s", code, out)
	}
	if got := r.savedState().Cursor; got != cursor {
		t.Fatalf("cursor moved from %q to %q past the flood", cursor, got)
	}
	r.want = before
	r.waitConverged(nil, 0) // nothing of the flood reached LAPI

	// The operator raises the cap: the flood goes in from the kept cursor.
	r.setConfig(func(c *bridgetest.Config) { c.Decisions.MaxNewPerSync = 1000 })
	r.want = all
	if code, out := r.once(); code != 0 || !strings.Contains(out, "pushed=300") {
		t.Fatalf("after raising the cap (exit %d):\n%s", code, out)
	}
	r.waitConverged(nil, 0)
}
