package lapi_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bridge/lapi"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/lapitest"
)

// The per-sync check (Edge) against a real LAPI that holds 10,000 or
// 100,000 of this bridge's decisions in alerts of 1,000: one request,
// whatever the count; what it costs LAPI shows as the wall time here.
func BenchmarkEdge10k(b *testing.B)  { benchEdge(b, 10_000) }
func BenchmarkEdge100k(b *testing.B) { benchEdge(b, 100_000) }

func benchEdge(b *testing.B, n int) {
	l := lapitest.Start(b)
	l.AddMachine(b, "bridge-test", "s3cret-Pw")
	c, err := lapi.New(lapi.Options{
		URL: l.URL, Login: "bridge-test", Password: "s3cret-Pw", UserAgent: "crowdsec-apiban-bridge/bench",
		Origin: "apiban", Scenario: "apiban/sip-blocklist", Type: "ban", Timeout: 5 * time.Minute,
		BatchSize: 1000, Message: "APIBAN sip",
	})
	if err != nil {
		b.Fatal(err)
	}
	ds := make([]lapi.Decision, n)
	for i := range ds {
		a := netip.AddrFrom4([4]byte{45, byte(i >> 16), byte(i >> 8), byte(i)})
		ds[i] = lapi.Decision{Prefix: netip.PrefixFrom(a, 32), Duration: 168 * time.Hour}
	}
	ctx := context.Background()
	for start := 0; start < n; start += 10_000 {
		if _, err := c.Push(ctx, ds[start:min(start+10_000, n)], time.Now()); err != nil {
			b.Fatal(err)
		}
	}
	newest := true
	for b.Loop() {
		if _, found, err := c.Edge(ctx, newest); err != nil || !found {
			b.Fatalf("Edge: found %v, %v", found, err)
		}
		newest = !newest
	}
}
