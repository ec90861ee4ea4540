package bouncer_test

import (
	"context"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/crowdsecurity/crowdsec/pkg/models"

	. "github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bouncer" // the package under test
)

// Poll benchmark shape: what the embedded bouncer holds, and what one poll
// of LAPI's stream (every update_frequency, 10 s by default) brings.
const (
	benchAddrs    = 90_000 // single addresses held, origin apiban
	benchRanges   = 10_000 // ranges held, origin crowdsec
	benchPoll     = 10 * time.Second
	benchNewAddrs = 4 // per poll: 4 new addresses and 1 new range,
	benchNewRange = 1 // and as many of the oldest deleted (10 changes)
	benchBatch    = 1_000
	benchLife     = "8760h" // no decision expires during a run
)

// countingBackend is a kernel that only counts what it is asked to change.
type countingBackend struct{ adds, deletes, other int }

func (c *countingBackend) Name() string                               { return "counting" }
func (c *countingBackend) Nested() bool                               { return false }
func (c *countingBackend) Reconcile(context.Context, []Element) error { return nil }
func (c *countingBackend) Cleanup(context.Context) error              { return nil }
func (c *countingBackend) Close() error                               { return nil }
func (c *countingBackend) Apply(_ context.Context, ch Changes) error {
	c.adds += len(ch.Add)
	c.deletes += len(ch.Delete)
	c.other += len(ch.Refresh) + len(ch.Renew)
	return nil
}

// benchValue is the i-th address (11.0.0.0/8) or the i-th /28 range
// (12.0.0.0/8, a million of them, reused once long deleted).
func benchValue(i int, isRange bool) string {
	if !isRange {
		a := netip.AddrFrom4([4]byte{11, byte(i >> 16), byte(i >> 8), byte(i)})
		return a.String()
	}
	i %= 1 << 20
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{12, byte(i >> 12), byte(i >> 4), byte(i << 4)}), 28).String()
}

// benchStream makes the decisions: the i-th address or range gets id.
type benchStream struct {
	nextID      int64
	nextAddr    int
	nextRange   int
	addrs, rngs []int64 // the IDs held, oldest first
}

func (s *benchStream) decision(isRange bool) *models.Decision {
	s.nextID++
	origin, scope, value := "apiban", "Ip", ""
	if isRange {
		origin, scope, value = "crowdsec", "Range", benchValue(s.nextRange, true)
		s.nextRange++
	} else {
		value = benchValue(s.nextAddr, false)
		s.nextAddr++
	}
	typ, dur, scenario := "ban", benchLife, "bench"
	return &models.Decision{ID: s.nextID, Origin: &origin, Scope: &scope, Value: &value, Type: &typ, Duration: &dur, Scenario: &scenario}
}

// poll is one delta: new decisions, and the oldest as many deleted.
func (s *benchStream) poll() *models.DecisionsStreamResponse {
	r := &models.DecisionsStreamResponse{}
	for range benchNewAddrs {
		d := s.decision(false)
		r.New = append(r.New, d)
		r.Deleted = append(r.Deleted, &models.Decision{ID: s.addrs[0]})
		s.addrs = append(s.addrs[1:], d.ID)
	}
	for range benchNewRange {
		d := s.decision(true)
		r.New = append(r.New, d)
		r.Deleted = append(r.Deleted, &models.Decision{ID: s.rngs[0]})
		s.rngs = append(s.rngs[1:], d.ID)
	}
	return r
}

// BenchmarkPoll100k is one poll of the decision stream with 100,000
// decisions held (90,000 addresses, 10,000 ranges, two origins) and 10
// changes (5 new, 5 deleted), in nftables mode, against a kernel that only
// counts: the bouncer's own work per poll. The answers are built outside
// the timer, in batches. held-MiB is the heap the bouncer keeps after the
// full load (the IDs the benchmark keeps, 0.8 MB, included).
func BenchmarkPoll100k(b *testing.B) {
	if time.Duration(b.N)*benchPoll > 8000*time.Hour {
		b.Fatalf("%d polls outlive the decisions (%s)", b.N, benchLife)
	}
	ctx := context.Background()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	kernel := &countingBackend{}
	bo := New(kernel, Options{Now: clk.now})
	s := &benchStream{}
	full := &models.DecisionsStreamResponse{}
	for range benchAddrs {
		d := s.decision(false)
		s.addrs = append(s.addrs, d.ID)
		full.New = append(full.New, d)
	}
	for range benchRanges {
		d := s.decision(true)
		s.rngs = append(s.rngs, d.ID)
		full.New = append(full.New, d)
	}
	if bo.Tick(ctx, full, true) {
		b.Fatal("the full load failed")
	}
	full = nil
	runtime.GC()
	runtime.ReadMemStats(&after)
	held := float64(after.HeapAlloc-before.HeapAlloc) / (1 << 20)
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; {
		b.StopTimer()
		batch := make([]*models.DecisionsStreamResponse, min(benchBatch, b.N-done))
		for i := range batch {
			batch[i] = s.poll()
		}
		b.StartTimer()
		for _, r := range batch {
			clk.t = clk.t.Add(benchPoll)
			if bo.Tick(ctx, r, false) {
				b.Fatal("a poll failed")
			}
		}
		done += len(batch)
	}
	b.StopTimer()
	b.ReportMetric(held, "held-MiB") // after ResetTimer, which drops reported metrics
	per := benchNewAddrs + benchNewRange
	if kernel.adds != per*b.N || kernel.deletes != per*b.N || kernel.other != 0 {
		b.Fatalf("%d polls changed %d adds, %d deletes, %d refreshes and renewals; want %d adds and deletes each, nothing else",
			b.N, kernel.adds, kernel.deletes, kernel.other, per*b.N)
	}
	if st := bo.Stats(); st.Decisions != benchAddrs+benchRanges || st.Elements != benchAddrs+benchRanges {
		b.Fatalf("after %d polls: %d decisions, %d elements; want %d of each", b.N, st.Decisions, st.Elements, benchAddrs+benchRanges)
	}
}

// BenchmarkFullLoad100k is the start (or a resync) with the same 100,000
// decisions: a fresh bouncer takes LAPI's whole list and plans the kernel
// load, which the poll's bookkeeping must not make much dearer.
func BenchmarkFullLoad100k(b *testing.B) {
	s := &benchStream{}
	full := &models.DecisionsStreamResponse{}
	for range benchAddrs {
		full.New = append(full.New, s.decision(false))
	}
	for range benchRanges {
		full.New = append(full.New, s.decision(true))
	}
	b.ReportAllocs()
	for b.Loop() {
		clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
		bo := New(&countingBackend{}, Options{Now: clk.now})
		if bo.Tick(context.Background(), full, true) {
			b.Fatal("the full load failed")
		}
		if st := bo.Stats(); st.Elements != benchAddrs+benchRanges {
			b.Fatalf("%d elements loaded, want %d", st.Elements, benchAddrs+benchRanges)
		}
	}
}
