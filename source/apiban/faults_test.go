package apiban_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/source/apiban"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/apibansim"
)

// faultConfig retries quickly and times out a hang quickly.
func faultConfig(sim *apibansim.Sim, version string) apiban.Config {
	cfg := fastConfig(sim, version)
	cfg.Timeout = 200 * time.Millisecond
	return cfg
}

func TestEachFaultIsRetriedAndRecovered(t *testing.T) {
	for _, version := range []string{"v1", "v2"} {
		for _, fault := range apibansim.Faults() {
			t.Run(version+"/"+fault.String(), func(t *testing.T) {
				sim := newSim(t, apibansim.Options{})
				ips := apibansim.PublicIPv4s(20, 1)
				sim.Add(ips...)
				sim.FailNext(fault, fault)
				clock := newFakeClock()
				c := newClient(t, faultConfig(sim, version), apiban.WithClock(clock))

				b, err := c.Next(context.Background(), "")
				if err != nil {
					t.Fatalf("not recovered: %v", err)
				}
				samePrefixes(t, b.Prefixes, hostPrefixes(ips))
				if !b.Last || b.Cursor != sim.LastID() {
					t.Fatalf("batch cursor %q last %v, want %q last", b.Cursor, b.Last, sim.LastID())
				}
				if c.Requests() != 3 || sim.PendingFaults() != 0 {
					t.Fatalf("client sent %d requests, %d faults left; want 3 and 0", c.Requests(), sim.PendingFaults())
				}
				if got := len(clock.Sleeps()); got != 2 {
					t.Fatalf("slept %d times, want 2 (one per retry)", got)
				}
			})
		}
	}
}

func TestRetriesExhausted(t *testing.T) {
	want := map[apibansim.Fault]error{
		apibansim.Fault500:         apiban.ErrServer,
		apibansim.Fault502:         apiban.ErrServer,
		apibansim.Fault503:         apiban.ErrServer,
		apibansim.FaultReset:       apiban.ErrTransport,
		apibansim.FaultHang:        apiban.ErrTransport,
		apibansim.FaultTruncated:   apiban.ErrBadResponse,
		apibansim.FaultEmpty:       apiban.ErrBadResponse,
		apibansim.FaultEmptyObject: apiban.ErrBadResponse,
		apibansim.FaultOversized:   apiban.ErrBadResponse,
		apibansim.FaultMalformed:   apiban.ErrBadResponse,
		apibansim.Fault429:         apiban.ErrRateLimited,
	}
	for _, fault := range apibansim.Faults() {
		t.Run(fault.String(), func(t *testing.T) {
			sim := newSim(t, apibansim.Options{})
			sim.Add("192.0.2.1")
			sim.FailNext(fault, fault, fault)
			c := newClient(t, faultConfig(sim, "v2"), apiban.WithClock(newFakeClock()))

			_, err := c.Next(context.Background(), "")
			if err == nil {
				t.Fatal("no error after every attempt failed")
			}
			if !errors.Is(err, want[fault]) || len(classes(err)) != 1 {
				t.Fatalf("error classes %v, want only %v: %v", classes(err), want[fault], err)
			}
			if c.Requests() != 3 || !strings.Contains(err.Error(), "attempt 3 of 3") {
				t.Fatalf("%d requests, error %q; want 3 attempts", c.Requests(), err)
			}
		})
	}
}

func TestOversizedBodyNamesTheCap(t *testing.T) {
	sim := newSim(t, apibansim.Options{OversizeBytes: 2 << 20})
	sim.FailNext(apibansim.FaultOversized)
	cfg := faultConfig(sim, "v2")
	cfg.MaxRetries = 0
	cfg.MaxBodyBytes = 1 << 20
	_, err := newClient(t, cfg).Next(context.Background(), "")
	if !errors.Is(err, apiban.ErrBadResponse) || !strings.Contains(err.Error(), "1 MiB cap") {
		t.Fatalf("got %v, want a bad response naming the 1 MiB cap", err)
	}
}

func TestTimeoutIsTransportAndDeadline(t *testing.T) {
	sim := newSim(t, apibansim.Options{})
	sim.FailNext(apibansim.FaultHang)
	cfg := faultConfig(sim, "v1")
	cfg.MaxRetries = 0
	start := time.Now()
	_, err := newClient(t, cfg).Next(context.Background(), "")
	if !errors.Is(err, apiban.ErrTransport) || !errors.Is(err, context.DeadlineExceeded) ||
		!strings.Contains(err.Error(), "timed out after 200ms") {
		t.Fatalf("got %v, want a transport timeout", err)
	}
	if time.Since(start) > 3*time.Second {
		t.Fatalf("timeout of 200ms took %s", time.Since(start))
	}
}

func TestCancelStopsAHangingRequest(t *testing.T) {
	sim := newSim(t, apibansim.Options{})
	sim.FailNext(apibansim.FaultHang)
	cfg := faultConfig(sim, "v2")
	cfg.Timeout = time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := newClient(t, cfg).Next(ctx, "")
	if !errors.Is(err, context.DeadlineExceeded) || len(classes(err)) != 0 {
		t.Fatalf("got %v (classes %v), want only the context's error", err, classes(err))
	}
}

func TestCancelDuringBackoff(t *testing.T) {
	sim := newSim(t, apibansim.Options{})
	sim.FailNext(apibansim.Fault503)
	cfg := faultConfig(sim, "v2")
	cfg.BackoffBase, cfg.BackoffMax = time.Minute, time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := newClient(t, cfg).Next(ctx, "")
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Fatalf("got %v after %s, want the context's error soon", err, time.Since(start))
	}
}

func TestBadKeyIsNotRetried(t *testing.T) {
	for _, version := range []string{"v1", "v2"} {
		t.Run(version, func(t *testing.T) {
			sim := newSim(t, apibansim.Options{Key: "the-right-key"})
			cfg := fastConfig(sim, version)
			cfg.APIKey = "a-wrong-key"
			clock := newFakeClock()
			c := newClient(t, cfg, apiban.WithClock(clock))
			_, err := c.Next(context.Background(), "")
			if !errors.Is(err, apiban.ErrUnauthorized) || len(classes(err)) != 1 {
				t.Fatalf("got %v, want only ErrUnauthorized", err)
			}
			if c.Requests() != 1 || len(clock.Sleeps()) != 0 {
				t.Fatalf("%d requests, %d sleeps; want 1 and none", c.Requests(), len(clock.Sleeps()))
			}
		})
	}
}

func TestBackoffGrowsAndIsCapped(t *testing.T) {
	sim := newSim(t, apibansim.Options{})
	sim.FailNext(slices.Repeat([]apibansim.Fault{apibansim.Fault500}, 6)...)
	cfg := fastConfig(sim, "v2")
	cfg.MaxRetries = 6
	cfg.BackoffBase, cfg.BackoffMax = 100*time.Millisecond, 500*time.Millisecond
	clock := newFakeClock()
	if _, err := newClient(t, cfg, apiban.WithClock(clock)).Next(context.Background(), ""); err != nil {
		t.Fatal(err)
	}
	// Retry n waits between half and all of min(base*2^(n-1), max).
	caps := []time.Duration{100, 200, 400, 500, 500, 500}
	sleeps := clock.Sleeps()
	if len(sleeps) != len(caps) {
		t.Fatalf("sleeps %v, want %d", sleeps, len(caps))
	}
	for i, s := range sleeps {
		hi := caps[i] * time.Millisecond
		if s < hi/2 || s > hi {
			t.Errorf("retry %d slept %s, want within [%s, %s]", i+1, s, hi/2, hi)
		}
	}
}

// A negative MaxRetries (a caller's bug: config refuses it) is one
// attempt, not retries without end.
func TestNegativeRetriesIsOneAttempt(t *testing.T) {
	sim := newSim(t, apibansim.Options{})
	sim.FailNext(apibansim.Fault500, apibansim.Fault500)
	cfg := fastConfig(sim, "v2")
	cfg.MaxRetries = -1
	c := newClient(t, cfg)
	if _, err := c.Next(context.Background(), ""); err == nil || !strings.Contains(err.Error(), "(attempt 1 of 1)") {
		t.Fatalf("got %v, want a failure after the first attempt", err)
	}
	if c.Requests() != 1 {
		t.Fatalf("%d requests, want 1", c.Requests())
	}
}
