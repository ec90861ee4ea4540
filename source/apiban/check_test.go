package apiban_test

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/source/apiban"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/apibansim"
)

func TestCheck(t *testing.T) {
	for _, version := range []string{"v1", "v2"} {
		t.Run(version, func(t *testing.T) {
			sim := newSim(t, apibansim.Options{})
			sim.Add("203.0.113.9")
			c := newClient(t, fastConfig(sim, version))
			ctx := context.Background()
			if listed, err := c.Check(ctx, netip.MustParseAddr("203.0.113.9")); err != nil || !listed {
				t.Fatalf("listed address: %v %v", listed, err)
			}
			if listed, err := c.Check(ctx, netip.MustParseAddr("203.0.113.10")); err != nil || listed {
				t.Fatalf("unlisted address: %v %v", listed, err)
			}
			if c.Requests() != 2 {
				t.Errorf("%d requests, want 2", c.Requests())
			}
			cfg := fastConfig(sim, version)
			cfg.APIKey = "wrong-key-31337"
			_, err := newClient(t, cfg).Check(ctx, netip.MustParseAddr("203.0.113.9"))
			if !errors.Is(err, apiban.ErrUnauthorized) || strings.Contains(err.Error(), cfg.APIKey) {
				t.Fatalf("bad key: %v", err)
			}
		})
	}
}
