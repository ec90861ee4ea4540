package apiban_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/source/apiban"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/apibansim"
)

// TestSharedGateKeepsSetsUnderOneLimit: APIBAN limits requests per key,
// so two sets pulled with one key must together stay under the limit.
// The simulator enforces it (3 per window) and answers 429 past it; two
// clients sharing one gate alternate 8 requests and never meet one, and
// each still gets only its own set.
func TestSharedGateKeepsSetsUnderOneLimit(t *testing.T) {
	window := 300 * time.Millisecond
	sim := newSim(t, apibansim.Options{MaxRequests: 3, RateWindow: window})
	sim.AddSet(apibansim.SetSIP, "198.51.100.1")
	sim.AddSet(apibansim.SetHTTP, "203.0.113.1")
	gate := apiban.NewGate(3, window)
	clients := map[string]*apiban.Client{}
	for _, set := range []string{"sip", "http"} {
		cfg := fastConfig(sim, "v2")
		cfg.Set, cfg.RateWindow, cfg.MaxRetries, cfg.Gate = set, window, 0, gate
		// Without the gate each client alone would allow 3 per window.
		cfg.MaxRequests = 3
		clients[set] = newClient(t, cfg)
	}
	want := map[string]string{"sip": "198.51.100.1/32", "http": "203.0.113.1/32"}
	for i := range 8 {
		set := []string{"sip", "http"}[i%2]
		p, err := clients[set].Next(context.Background(), "")
		if err != nil {
			t.Fatalf("request %d (%s): %v", i+1, set, err)
		}
		if len(p.Prefixes) != 1 || p.Prefixes[0].String() != want[set] {
			t.Fatalf("set %s got %v, want only %s", set, p.Prefixes, want[set])
		}
	}
	if sim.RateLimited() != 0 || sim.Requests() != 8 {
		t.Fatalf("sim saw %d requests and served %d 429s; want 8 and none", sim.Requests(), sim.RateLimited())
	}
}

// TestSharedGateWaitsOnTheClock: the waits themselves. Two clients with
// a shared gate of 3 per minute wait a window at the 4th and 7th request
// between them; with a gate each they would not wait at all.
func TestSharedGateWaitsOnTheClock(t *testing.T) {
	sim := newSim(t, apibansim.Options{})
	run := func(shared bool) []time.Duration {
		clock := newFakeClock()
		gate := apiban.NewGate(3, time.Minute)
		var cs []*apiban.Client
		for _, set := range []string{"sip", "http"} {
			cfg := fastConfig(sim, "v2")
			cfg.Set, cfg.MaxRequests, cfg.RateWindow = set, 3, time.Minute
			if shared {
				cfg.Gate = gate
			}
			cs = append(cs, newClient(t, cfg, apiban.WithClock(clock)))
		}
		for i := range 6 {
			if _, err := cs[i%2].Next(context.Background(), ""); err != nil {
				t.Fatal(err)
			}
		}
		return clock.Sleeps()
	}
	if got := run(true); !slices.Equal(got, []time.Duration{time.Minute}) {
		t.Fatalf("shared gate slept %v, want one whole window (6 requests at 3 per minute)", got)
	}
	if got := run(false); len(got) != 0 {
		t.Fatalf("separate gates slept %v, want none (3 requests each)", got)
	}
}
