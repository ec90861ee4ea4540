package apiban_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/source/apiban"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/apibansim"
)

func TestRateLimitedWaitsAWholeWindow(t *testing.T) {
	sim := newSim(t, apibansim.Options{})
	sim.Add("192.0.2.1")
	sim.FailNext(apibansim.Fault429)
	cfg := fastConfig(sim, "v1")
	cfg.RateWindow = 90 * time.Second
	clock := newFakeClock()
	c := newClient(t, cfg, apiban.WithClock(clock))
	b, err := c.Next(context.Background(), "")
	if err != nil || len(b.Prefixes) != 1 {
		t.Fatalf("got %+v, %v; want the batch after one 429", b, err)
	}
	if got := clock.Sleeps(); !slices.Equal(got, []time.Duration{90 * time.Second}) {
		t.Fatalf("slept %v, want one whole window of 90s", got)
	}
	if c.RateLimited() != 1 || c.Requests() != 2 {
		t.Fatalf("RateLimited %d, Requests %d; want 1 and 2", c.RateLimited(), c.Requests())
	}
}

// TestRateLimitedByTheServer runs on the wall clock against a server
// whose real limit the unpaced client overruns.
func TestRateLimitedByTheServer(t *testing.T) {
	window := 200 * time.Millisecond
	sim := newSim(t, apibansim.Options{MaxRequests: 2, RateWindow: window})
	cfg := fastConfig(sim, "v2")
	cfg.RateWindow = window
	c := newClient(t, cfg)
	start := time.Now()
	for range 3 {
		if _, err := c.Next(context.Background(), ""); err != nil {
			t.Fatal(err)
		}
	}
	if c.RateLimited() != 1 || sim.RateLimited() != 1 {
		t.Fatalf("429s: client %d, sim %d; want 1", c.RateLimited(), sim.RateLimited())
	}
	if d := time.Since(start); d < window {
		t.Fatalf("recovered after %s, before a whole window of %s", d, window)
	}
}

// TestPacingStaysUnderTheLimit: a client paced exactly at the server's
// limit never meets a 429, and so must spread 7 requests over 2 windows.
func TestPacingStaysUnderTheLimit(t *testing.T) {
	window := 300 * time.Millisecond
	sim := newSim(t, apibansim.Options{MaxRequests: 3, RateWindow: window})
	cfg := fastConfig(sim, "v1")
	cfg.MaxRequests, cfg.RateWindow, cfg.MaxRetries = 3, window, 0
	c := newClient(t, cfg)
	start := time.Now()
	for i := range 7 {
		if _, err := c.Next(context.Background(), ""); err != nil {
			t.Fatalf("request %d: %v", i+1, err)
		}
	}
	if sim.RateLimited() != 0 || c.RateLimited() != 0 || sim.Requests() != 7 {
		t.Fatalf("sim saw %d requests and served %d 429s; want 7 and none", sim.Requests(), sim.RateLimited())
	}
	if d := time.Since(start); d < 2*window {
		t.Fatalf("7 requests at 3 per %s took %s, want at least %s", window, d, 2*window)
	}
}

// TestPacingWaitsOnTheClock checks the waits themselves, on a fake clock.
func TestPacingWaitsOnTheClock(t *testing.T) {
	sim := newSim(t, apibansim.Options{})
	cfg := fastConfig(sim, "v2")
	cfg.MaxRequests, cfg.RateWindow = 3, time.Minute
	clock := newFakeClock()
	c := newClient(t, cfg, apiban.WithClock(clock))
	for range 7 {
		if _, err := c.Next(context.Background(), ""); err != nil {
			t.Fatal(err)
		}
	}
	// The fake clock stands still during requests, so requests 4 and 7
	// each wait exactly one window.
	if got := clock.Sleeps(); !slices.Equal(got, []time.Duration{time.Minute, time.Minute}) {
		t.Fatalf("slept %v, want two whole windows", got)
	}
}

func TestPacingWaitIsCancelable(t *testing.T) {
	sim := newSim(t, apibansim.Options{})
	cfg := fastConfig(sim, "v2")
	cfg.MaxRequests, cfg.RateWindow = 1, time.Hour
	c := newClient(t, cfg)
	if _, err := c.Next(context.Background(), ""); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := c.Next(ctx, ""); err == nil || ctx.Err() == nil {
		t.Fatalf("got %v, want the context's error", err)
	}
	if c.Requests() != 1 {
		t.Fatalf("%d requests, want the second one never sent", c.Requests())
	}
}
