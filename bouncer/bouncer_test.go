package bouncer_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/crowdsecurity/crowdsec/pkg/models"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"

	. "github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bouncer" // the package under test
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bouncer/bouncertest"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/source/neverban"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func dec(id int64, scope, value, typ, dur string) *models.Decision {
	origin, scenario := "cscli", "test"
	return &models.Decision{ID: id, Scope: &scope, Value: &value, Type: &typ, Duration: &dur, Origin: &origin, Scenario: &scenario}
}

func ban(id int64, value, dur string) *models.Decision {
	scope := "Ip"
	if strings.Contains(value, "/") {
		scope = "Range"
	}
	return dec(id, scope, value, "ban", dur)
}

type harness struct {
	t     *testing.T
	b     *Bouncer
	r     *bouncertest.Recorder
	clk   *clock
	first bool
}

func newHarness(t *testing.T, nested bool, allow ...string) *harness {
	r := bouncertest.NewRecorder(nested)
	clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	var prefixes []netip.Prefix
	for _, a := range allow {
		prefixes = append(prefixes, netip.MustParsePrefix(a))
	}
	return &harness{t: t, r: r, clk: clk, first: true, b: New(r, Options{Allowlist: prefixes, Now: clk.now})}
}

// tick feeds one stream answer, then checks the kernel holds want.
func (h *harness) tick(news, deleted []*models.Decision, want ...string) {
	h.t.Helper()
	h.first = h.b.Tick(context.Background(), &models.DecisionsStreamResponse{New: news, Deleted: deleted}, h.first)
	if h.first {
		h.t.Fatal("tick failed")
	}
	sort.Strings(want)
	if got := h.r.Prefixes(); !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
		h.t.Errorf("kernel holds %v, want %v", got, want)
	}
}

func (h *harness) timeout(p string) time.Duration {
	return h.r.Set()[netip.MustParsePrefix(p)]
}

func TestLongestDecisionWins(t *testing.T) {
	h := newHarness(t, false)
	h.tick([]*models.Decision{ban(1, "192.0.2.7", "1h")}, nil, "192.0.2.7/32")
	if got := h.timeout("192.0.2.7/32"); got != time.Hour {
		t.Errorf("timeout %s, want 1h", got)
	}
	// A longer decision refreshes the element's timeout.
	h.clk.t = h.clk.t.Add(time.Minute)
	h.tick([]*models.Decision{ban(2, "192.0.2.7", "10h")}, nil, "192.0.2.7/32")
	if got := h.timeout("192.0.2.7/32"); got != 10*time.Hour {
		t.Errorf("timeout after the longer decision %s, want 10h", got)
	}
	if c := h.r.LastChanges(); len(c.Refresh) != 1 || len(c.Add) != 0 {
		t.Errorf("want one refresh, got %+v", c)
	}
	// The short one ends: the long one still holds.
	h.tick(nil, []*models.Decision{ban(1, "192.0.2.7", "-1s")}, "192.0.2.7/32")
	// A shorter decision arriving later changes nothing.
	h.tick([]*models.Decision{ban(3, "192.0.2.7", "2h")}, nil, "192.0.2.7/32")
	if got := h.timeout("192.0.2.7/32"); got != 10*time.Hour {
		t.Errorf("timeout %s after a shorter decision, want 10h", got)
	}
	// The long one is deleted: the 2h one remains, with its timeout.
	h.tick(nil, []*models.Decision{ban(2, "192.0.2.7", "10h")}, "192.0.2.7/32")
	if got := h.timeout("192.0.2.7/32"); got != 2*time.Hour {
		t.Errorf("timeout %s after the long one was deleted, want 2h", got)
	}
	// The last one is deleted: the element leaves the set.
	h.tick(nil, []*models.Decision{ban(3, "192.0.2.7", "2h")})
	if got := h.b.Stats(); got.Decisions != 0 || got.Elements != 0 {
		t.Errorf("stats %+v, want nothing left", got)
	}
}

func TestFirstTickReconciles(t *testing.T) {
	h := newHarness(t, false)
	h.tick([]*models.Decision{ban(1, "192.0.2.1", "1h"), ban(2, "198.51.100.0/24", "1h"), ban(3, "2001:db8::/32", "1h")},
		nil, "192.0.2.1/32", "198.51.100.0/24", "2001:db8::/32")
	h.tick([]*models.Decision{ban(4, "192.0.2.2", "1h")}, nil, "192.0.2.1/32", "192.0.2.2/32", "198.51.100.0/24", "2001:db8::/32")
	if want := []string{"reconcile", "apply"}; !slices.Equal(h.r.Calls(), want) {
		t.Errorf("calls %v, want %v", h.r.Calls(), want)
	}
}

func TestFilters(t *testing.T) {
	h := newHarness(t, false, "203.0.113.0/28")
	h.tick([]*models.Decision{
		dec(1, "Ip", "192.0.2.1", "captcha", "1h"),
		dec(2, "Country", "FR", "ban", "1h"),
		dec(3, "Ip", "not-an-ip", "ban", "1h"),
		ban(4, "10.1.2.3", "1h"),                       // not public
		ban(5, "203.0.113.5", "1h"),                    // configured allowlist
		ban(6, "203.0.113.0/24", "1h"),                 // range overlapping the allowlist
		ban(7, "0.0.0.0/0", "1h"),                      // everything, private included
		ban(8, "192.0.2.9", "-5s"),                     // already over
		dec(9, "ip", "::ffff:192.0.2.10", "BAN", "1h"), // mapped, lower-case scope
		ban(10, "198.51.100.0/24", "1h"),
	}, nil, "192.0.2.10/32", "198.51.100.0/24")
	if got := h.b.Stats().Skipped; got != 8 {
		t.Errorf("skipped %d, want 8", got)
	}
	want := map[string]int{"not-ban": 1, "scope": 1, "malformed": 1, "special": 2, "allowlist": 2, "expired": 1}
	if got := h.b.Stats().SkippedBy; !maps.Equal(got, want) {
		t.Errorf("skipped by reason %v, want %v", got, want)
	}
}

// Decisions of any origin that would ban this host, its LAPI, its
// gateway or resolver, special-purpose space or a range wider than the
// minimum are never enforced; each is logged and counted once, however
// often LAPI sends it.
func TestNeverBan(t *testing.T) {
	r := bouncertest.NewRecorder(false)
	clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	log, hook := logtest.NewNullLogger()
	never := neverban.New(
		neverban.Entry{Prefix: netip.MustParsePrefix("198.51.100.2/32"), Reason: neverban.ReasonSelf},
		neverban.Entry{Prefix: netip.MustParsePrefix("2001:db8::2/128"), Reason: neverban.ReasonSelf},
		neverban.Entry{Prefix: netip.MustParsePrefix("203.0.113.50/32"), Reason: neverban.ReasonLAPI},
		neverban.Entry{Prefix: netip.MustParsePrefix("198.51.100.1/32"), Reason: neverban.ReasonGateway},
		neverban.Entry{Prefix: netip.MustParsePrefix("198.51.100.53/32"), Reason: neverban.ReasonResolver},
	)
	b := New(r, Options{NeverBan: never, MinPrefixV4: 16, MinPrefixV6: 32, Now: clk.now, Log: log})
	decisions := []*models.Decision{
		ban(1, "198.51.100.2", "1h"),     // self
		ban(2, "2001:db8::2", "1h"),      // self
		ban(3, "198.51.100.0/24", "1h"),  // a range over this host
		ban(4, "203.0.113.50", "1h"),     // LAPI
		ban(5, "198.51.100.1", "1h"),     // gateway
		ban(6, "198.51.100.53", "1h"),    // resolver
		ban(7, "11.0.0.0/8", "1h"),       // too wide
		ban(8, "2a00::/12", "1h"),        // too wide
		ban(9, "0.1.2.3", "1h"),          // special
		ban(10, "64:ff9b::/96", "1h"),    // special: NAT64
		ban(11, "2002:a00:1::/48", "1h"), // special: 6to4 of 10.0.0.1
		ban(12, "203.0.113.7", "1h"),     // enforced
		ban(13, "203.1.0.0/16", "1h"),    // enforced: exactly the minimum
		ban(14, "2a01::/32", "1h"),       // enforced: exactly the minimum
		ban(15, "192.0.2.77", "1h"),      // documentation ranges are bannable
	}
	want := map[string]int{"self": 3, "lapi": 1, "gateway": 1, "resolver": 1, "too-wide": 2, "special": 3}
	for range 3 { // the same answer again, as after a reconnection
		if b.Tick(context.Background(), &models.DecisionsStreamResponse{New: decisions}, true) {
			t.Fatal("tick failed")
		}
		if got := r.Prefixes(); !slices.Equal(got, []string{"192.0.2.77/32", "203.0.113.7/32", "203.1.0.0/16", "2a01::/32"}) {
			t.Errorf("kernel holds %v", got)
		}
		if got := b.Stats().SkippedBy; !maps.Equal(got, want) {
			t.Errorf("skipped by reason %v, want %v", got, want)
		}
	}
	var warned []string
	for _, e := range hook.AllEntries() {
		if e.Level == logrus.WarnLevel {
			warned = append(warned, fmt.Sprint(e.Data["decision"]))
		}
	}
	if !slices.Equal(warned, []string{"1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11"}) {
		t.Errorf("warnings for decisions %v, want one for each of 1 to 11", warned)
	}
	// A deleted and re-added decision is logged again.
	b.Tick(context.Background(), &models.DecisionsStreamResponse{Deleted: decisions[:1]}, false)
	hook.Reset()
	b.Tick(context.Background(), &models.DecisionsStreamResponse{New: decisions[:1]}, false)
	if n := len(hook.AllEntries()); n != 1 || !strings.Contains(hook.LastEntry().Message, "198.51.100.2/32 overlaps 198.51.100.2/32, which is never banned (self)") {
		t.Errorf("after a re-add, log %d entries, last %v", n, hook.LastEntry())
	}
}

func TestNestedRangesWithoutOverlapSupport(t *testing.T) {
	h := newHarness(t, false)
	h.tick([]*models.Decision{ban(1, "198.51.100.0/24", "1h"), ban(2, "198.51.100.128/25", "5h"), ban(3, "198.51.100.7", "5h")},
		nil, "198.51.100.0/24", "198.51.100.7/32")
	// The wide range is deleted: the narrower one takes over.
	h.tick(nil, []*models.Decision{ban(1, "198.51.100.0/24", "1h")}, "198.51.100.128/25", "198.51.100.7/32")
	if c := h.r.LastChanges(); len(c.Delete) != 1 || len(c.Add) != 1 {
		t.Errorf("want the wide range deleted and the narrow one added in one tick, got %+v", c)
	}

	n := newHarness(t, true)
	n.tick([]*models.Decision{ban(1, "198.51.100.0/24", "1h"), ban(2, "198.51.100.128/25", "5h")},
		nil, "198.51.100.0/24", "198.51.100.128/25")
}

// TestNestedRangeAfterWiderExpires: the wider range times out in the
// kernel; the narrower one waits until it is gone instead of failing the
// batch on the overlap.
func TestNestedRangeAfterWiderExpires(t *testing.T) {
	h := newHarness(t, false)
	h.r.SetClock(h.clk.now)
	h.tick([]*models.Decision{ban(1, "198.51.100.0/24", "1m"), ban(2, "198.51.100.128/25", "5h")}, nil, "198.51.100.0/24")
	for _, step := range []struct {
		at   time.Duration
		want []string
	}{
		{59 * time.Second, []string{"198.51.100.0/24"}}, // expiring: left to the kernel
		{61 * time.Second, nil},                         // gone from the kernel, maybe not yet collected
		{62 * time.Second, []string{"198.51.100.128/25"}},
	} {
		h.clk.t = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(step.at)
		h.tick(nil, nil, step.want...)
	}
	if want := []string{"reconcile", "apply"}; !slices.Equal(h.r.Calls()[:2], want) || slices.Contains(h.r.Calls()[1:], "reconcile") {
		t.Errorf("calls %v: want no rebuild", h.r.Calls())
	}
}

func TestExpiryLeftToTheKernel(t *testing.T) {
	h := newHarness(t, false)
	h.tick([]*models.Decision{ban(1, "192.0.2.1", "1m"), ban(2, "192.0.2.2", "1h")}, nil, "192.0.2.1/32", "192.0.2.2/32")
	// Nearly over: the element is left to time out in the kernel, not
	// deleted (a delete racing the kernel's expiry would fail the batch).
	h.clk.t = h.clk.t.Add(59 * time.Second)
	h.tick(nil, nil, "192.0.2.1/32", "192.0.2.2/32")
	h.tick(nil, []*models.Decision{ban(1, "192.0.2.1", "-1s")}, "192.0.2.1/32", "192.0.2.2/32")
	for _, c := range h.r.Changes() {
		if len(c.Delete) > 0 {
			t.Errorf("deleted %v instead of letting it expire", c.Delete)
		}
	}
	if got := h.b.Stats().Decisions; got != 1 {
		t.Errorf("%d decisions tracked, want 1", got)
	}
}

func TestRefusedApplyRebuilds(t *testing.T) {
	h := newHarness(t, false)
	h.tick([]*models.Decision{ban(1, "192.0.2.1", "1h")}, nil, "192.0.2.1/32")
	h.r.FailNext()
	h.tick([]*models.Decision{ban(2, "192.0.2.2", "1h")}, nil, "192.0.2.1/32", "192.0.2.2/32")
	if want := []string{"reconcile", "apply", "reconcile"}; !slices.Equal(h.r.Calls(), want) {
		t.Errorf("calls %v, want %v", h.r.Calls(), want)
	}
}

// TestPollsAfterARefusedBatch: the refused batch changed nothing in the
// kernel, while the bouncer had already taken its changes as done; the
// rebuild must leave both agreeing, so that the next polls, incremental
// again, only delete what the kernel holds and the ranges covered by a
// wider one come back when it goes (the recorder refuses a delete of an
// absent element, which would force another rebuild).
func TestPollsAfterARefusedBatch(t *testing.T) {
	h := newHarness(t, false)
	h.r.SetClock(h.clk.now)
	h.tick([]*models.Decision{ban(1, "192.0.2.1", "1h"), ban(2, "198.51.100.0/24", "1h"), ban(3, "198.51.100.0/25", "2h")},
		nil, "192.0.2.1/32", "198.51.100.0/24")
	h.r.FailNext()
	h.tick([]*models.Decision{ban(4, "192.0.2.4", "1h")}, []*models.Decision{ban(1, "192.0.2.1", "1h")},
		"192.0.2.4/32", "198.51.100.0/24")
	h.at(10 * time.Second)
	h.tick([]*models.Decision{ban(5, "192.0.2.5", "1h")}, []*models.Decision{ban(4, "192.0.2.4", "1h"), ban(2, "198.51.100.0/24", "1h")},
		"192.0.2.5/32", "198.51.100.0/25")
	if want := []string{"reconcile", "apply", "reconcile", "apply"}; !slices.Equal(h.r.Calls(), want) {
		t.Errorf("calls %v, want %v: one rebuild for the refused batch, then incremental again", h.r.Calls(), want)
	}
	if s := h.b.Stats(); s.Decisions != 2 || s.Elements != 2 {
		t.Errorf("stats %+v, want 2 decisions and 2 elements", s)
	}
}

// RunAnswers removes the kernel objects when it stops, unless
// KeepOnExit, and closes the backend either way; answers that close
// before LAPI's first one are an error.
func TestRunAnswersCleansUp(t *testing.T) {
	for _, keep := range []bool{false, true} {
		r := bouncertest.NewRecorder(false)
		b := New(r, Options{KeepOnExit: keep})
		answers := make(chan Answer)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- b.RunAnswers(ctx, answers) }()
		answers <- Answer{DecisionsStreamResponse: &models.DecisionsStreamResponse{New: []*models.Decision{ban(1, "192.0.2.1", "1h")}}, Full: true}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if r.Cleaned() == keep || !r.Closed() {
			t.Errorf("keep_on_exit %v: cleaned %v closed %v", keep, r.Cleaned(), r.Closed())
		}
	}
	r := bouncertest.NewRecorder(false)
	answers := make(chan Answer)
	close(answers)
	if err := New(r, Options{}).RunAnswers(context.Background(), answers); err == nil {
		t.Error("closed stream: no error")
	}
}

// A later full answer (a resync) replaces what the bouncer holds: a
// decision LAPI dropped without a deleted event goes, one the stream
// never delivered comes; the change is counted.
func TestResyncReplacesTheSet(t *testing.T) {
	r := bouncertest.NewRecorder(false)
	b := New(r, Options{})
	answers := make(chan Answer)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- b.RunAnswers(ctx, answers) }()
	answers <- Answer{Full: true, DecisionsStreamResponse: &models.DecisionsStreamResponse{New: []*models.Decision{
		ban(1, "198.51.100.1", "1h"), ban(2, "198.51.100.2", "1h"), ban(3, "203.0.113.0/24", "1h")}}}
	answers <- Answer{DecisionsStreamResponse: &models.DecisionsStreamResponse{}}
	answers <- Answer{Full: true, DecisionsStreamResponse: &models.DecisionsStreamResponse{New: []*models.Decision{
		ban(2, "198.51.100.2", "1h"), ban(3, "203.0.113.0/24", "1h"), ban(9, "2001:db8::9", "1h")}}}
	answers <- Answer{DecisionsStreamResponse: &models.DecisionsStreamResponse{}} // the resync is applied
	want := []string{"198.51.100.2/32", "2001:db8::9/128", "203.0.113.0/24"}
	if got := r.Prefixes(); !slices.Equal(got, want) {
		t.Errorf("kernel holds %v, want %v", got, want)
	}
	if s := b.Stats(); s.Resyncs != 1 || s.ResyncAdded != 1 || s.ResyncRemoved != 1 || s.Decisions != 3 {
		t.Errorf("stats %+v, want 1 resync adding 1 and removing 1, 3 decisions", s)
	}
	if want := []string{"reconcile", "reconcile"}; !slices.Equal(r.Calls(), want) {
		t.Errorf("calls %v, want %v", r.Calls(), want)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestParseValue(t *testing.T) {
	for _, tc := range []struct{ scope, value, want string }{
		{"Ip", "192.0.2.1", "192.0.2.1/32"},
		{"Ip", "2001:db8::1", "2001:db8::1/128"},
		{"Range", "198.51.100.9/24", "198.51.100.0/24"},
		{"Range", "::ffff:198.51.100.0/120", "198.51.100.0/24"},
		{"range", "2001:db8::/32", "2001:db8::/32"},
	} {
		p, err := ParseValue(tc.scope, tc.value)
		if err != nil || p.String() != tc.want {
			t.Errorf("ParseValue(%s, %s) = %s, %v; want %s", tc.scope, tc.value, p, err, tc.want)
		}
	}
	for _, bad := range [][2]string{{"Ip", "192.0.2.0/24"}, {"Ip", "fe80::1%eth0"}, {"Range", "192.0.2.1"}, {"Range", "::ffff:0:0/90"}, {"AS", "64496"}} {
		if p, err := ParseValue(bad[0], bad[1]); err == nil {
			t.Errorf("ParseValue(%s, %s) = %s, want an error", bad[0], bad[1], p)
		}
	}
}

// counting is a recorder with drop counters.
type counting struct {
	*bouncertest.Recorder
	c      map[DropKey]Counters
	resets bool
}

func (c *counting) Dropped(context.Context) (map[DropKey]Counters, error) {
	return maps.Clone(c.c), nil
}

// Reconcile rebuilds the objects: with resets, the kernel counters start
// from zero, as the real backends' do.
func (c *counting) Reconcile(ctx context.Context, elems []Element) error {
	if c.resets {
		c.c = map[DropKey]Counters{}
	}
	return c.Recorder.Reconcile(ctx, elems)
}

func TestMetrics(t *testing.T) {
	v4, v6 := DropKey{"apiban", "ipv4"}, DropKey{"crowdsec", "ipv6"}
	r := &counting{Recorder: bouncertest.NewRecorder(false), c: map[DropKey]Counters{v4: {Packets: 7, Bytes: 420}, v6: {Packets: 1, Bytes: 80}}}
	clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	b := New(r, Options{Now: clk.now})
	origin := func(d *models.Decision, o string) *models.Decision { d.Origin = &o; return d }
	b.Tick(context.Background(), &models.DecisionsStreamResponse{New: []*models.Decision{
		origin(ban(1, "192.0.2.1", "1h"), "apiban"), origin(ban(2, "192.0.2.2", "1h"), "apiban"),
		origin(ban(3, "192.0.2.1", "2h"), "crowdsec"), origin(ban(4, "10.0.0.1", "1h"), "cscli"),
	}}, true)

	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(b.Collector())
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	scraped := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			key := f.GetName()
			for _, l := range m.GetLabel() {
				key += "/" + l.GetValue()
			}
			scraped[key] = m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	wantScraped := map[string]float64{
		"crowdsec_apiban_bridge_bouncer_active_decisions/apiban":         2,
		"crowdsec_apiban_bridge_bouncer_active_decisions/crowdsec":       1,
		"crowdsec_apiban_bridge_bouncer_kernel_elements":                 2,
		"crowdsec_apiban_bridge_bouncer_resyncs_total":                   0,
		"crowdsec_apiban_bridge_bouncer_resync_added_total":              0,
		"crowdsec_apiban_bridge_bouncer_resync_removed_total":            0,
		"crowdsec_apiban_bridge_bouncer_skipped_decisions_total/special": 1,
		// Labels in Prometheus order: ip_type, origin.
		"crowdsec_apiban_bridge_bouncer_dropped_packets_total/ipv4/apiban":   7,
		"crowdsec_apiban_bridge_bouncer_dropped_bytes_total/ipv4/apiban":     420,
		"crowdsec_apiban_bridge_bouncer_dropped_packets_total/ipv6/crowdsec": 1,
		"crowdsec_apiban_bridge_bouncer_dropped_bytes_total/ipv6/crowdsec":   80,
	}
	for _, r := range SkipReasons {
		if k := "crowdsec_apiban_bridge_bouncer_skipped_decisions_total/" + r; r != "special" {
			wantScraped[k] = 0 // every reason is exported, from zero
		}
	}
	if len(scraped) != len(wantScraped) {
		t.Errorf("scraped %v, want %v", scraped, wantScraped)
	}
	for k, v := range wantScraped {
		if scraped[k] != v {
			t.Errorf("%s = %v, want %v", k, scraped[k], v)
		}
	}

	// Usage metrics carry what was dropped since the previous report.
	u := NewUsage(b)
	m := &models.RemediationComponentsMetrics{}
	u.Update(m, time.Minute)
	// apiban's IPv4 counters grew; crowdsec's IPv6 ones were reset (the
	// objects were rebuilt) and count from zero.
	r.c = map[DropKey]Counters{v4: {Packets: 10, Bytes: 600}, v6: {Packets: 0, Bytes: 0}}
	m = &models.RemediationComponentsMetrics{}
	u.Update(m, time.Minute)
	got := map[string]float64{}
	for _, it := range m.Metrics[0].Items {
		key := *it.Name + "/" + *it.Unit
		for _, l := range []string{"origin", "ip_type"} {
			if v := it.Labels[l]; v != "" {
				key += "/" + v
			}
		}
		got[key] = *it.Value
	}
	wantUsage := map[string]float64{"dropped/packet/apiban/ipv4": 3, "dropped/byte/apiban/ipv4": 180,
		"dropped/packet/crowdsec/ipv6": 0, "dropped/byte/crowdsec/ipv6": 0,
		"active_decisions/ip/apiban": 2, "active_decisions/ip/crowdsec": 1}
	if len(got) != len(wantUsage) {
		t.Errorf("usage items %v, want %v", got, wantUsage)
	}
	for k, v := range wantUsage {
		if got[k] != v {
			t.Errorf("usage %s = %v, want %v", k, got[k], v)
		}
	}
	if *m.Metrics[0].Meta.WindowSizeSeconds != 60 {
		t.Errorf("window %d, want 60", *m.Metrics[0].Meta.WindowSizeSeconds)
	}
}

func from(origin string, d *models.Decision) *models.Decision { d.Origin = &origin; return d }

// TestDropsCountedUnderLongestDecisionsOrigin: an element sits in the set
// of its longest decision's origin, and moves (deleted from one origin's
// set, added to the other's, in one tick) when that changes.
func TestDropsCountedUnderLongestDecisionsOrigin(t *testing.T) {
	h := newHarness(t, false)
	ip := netip.MustParsePrefix("192.0.2.7/32")
	inSetOf := func(want string) {
		t.Helper()
		if got := h.r.Origin(ip); got != want {
			t.Errorf("element in %q's set, want %q's", got, want)
		}
	}
	h.tick([]*models.Decision{from("crowdsec", ban(1, "192.0.2.7", "1h"))}, nil, "192.0.2.7/32")
	inSetOf("crowdsec")
	h.tick([]*models.Decision{from("apiban", ban(2, "192.0.2.7", "168h"))}, nil, "192.0.2.7/32")
	inSetOf("apiban")
	last := h.r.LastChanges()
	if len(last.Delete) != 1 || last.Delete[0].Origin != "crowdsec" || len(last.Add) != 1 || last.Add[0].Origin != "apiban" ||
		len(last.Refresh) != 0 {
		t.Errorf("want a move from crowdsec's set to apiban's in one tick, got %+v", last)
	}
	if got := h.timeout("192.0.2.7/32"); got != 168*time.Hour {
		t.Errorf("timeout %s, want 168h", got)
	}
	// A longer decision of the same origin only refreshes.
	h.tick([]*models.Decision{from("apiban", ban(3, "192.0.2.7", "169h"))}, nil, "192.0.2.7/32")
	if last := h.r.LastChanges(); len(last.Refresh) != 1 || last.Refresh[0].Origin != "apiban" || len(last.Delete) != 0 {
		t.Errorf("want one refresh in apiban's set, got %+v", last)
	}
	// apiban's decisions go: back to crowdsec's set, with its timeout.
	h.tick(nil, []*models.Decision{ban(2, "192.0.2.7", "1s"), ban(3, "192.0.2.7", "1s")}, "192.0.2.7/32")
	inSetOf("crowdsec")
	if got := h.timeout("192.0.2.7/32"); got != time.Hour {
		t.Errorf("timeout %s, want crowdsec's 1h", got)
	}
	// Equal ends: the origin first in byte order, at every tick.
	h.tick([]*models.Decision{from("cscli", ban(4, "198.51.100.1", "2h")), from("CAPI", ban(5, "198.51.100.1", "2h"))},
		nil, "192.0.2.7/32", "198.51.100.1/32")
	if got := h.r.Origin(netip.MustParsePrefix("198.51.100.1/32")); got != "CAPI" {
		t.Errorf("tie went to %q, want CAPI", got)
	}
}

func TestCutOrigin(t *testing.T) {
	e150 := "x" + strings.Repeat("é", 150) // 301 bytes
	for _, c := range []struct {
		in   string
		n    int
		want string
	}{
		{"apiban", 200, "apiban"},
		{"abc", 3, "abc"},
		{"abcd", 3, "abc"},
		{"aé", 2, "a"}, // é is 2 bytes: not split
		{e150, 200, "x" + strings.Repeat("é", 99)},
		{"a\xffb", 10, "a?b"},
	} {
		got := CutOrigin(c.in, c.n)
		if got != c.want || !utf8.ValidString(got) || len(got) > c.n {
			t.Errorf("CutOrigin(%q, %d) = %q, want %q", c.in, c.n, got, c.want)
		}
	}
}

// TestCollectSkipsBadLabels: a label read back from the kernel that is not
// valid UTF-8 is skipped; the scrape neither panics nor loses the rest.
func TestCollectSkipsBadLabels(t *testing.T) {
	r := &counting{Recorder: bouncertest.NewRecorder(false), c: map[DropKey]Counters{
		{"bad\xff", "ipv4"}: {Packets: 1, Bytes: 10}, {"apiban", "ipv4"}: {Packets: 2, Bytes: 20}}}
	b := New(r, Options{})
	reg := prometheus.NewRegistry()
	reg.MustRegister(b.Collector())
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var dropped []string
	for _, f := range families {
		if strings.HasPrefix(f.GetName(), MetricsNamespace+"_dropped_") {
			for _, m := range f.GetMetric() {
				dropped = append(dropped, fmt.Sprint(f.GetName(), m.GetLabel(), m.GetCounter().GetValue()))
			}
		}
	}
	if len(dropped) != 2 || !strings.Contains(strings.Join(dropped, " "), "apiban") {
		t.Errorf("dropped metrics %v, want apiban's packets and bytes only", dropped)
	}
}

// at sets the harness clock to start plus d.
func (h *harness) at(d time.Duration) { h.clk.t = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(d) }

// noRebuild fails if any tick after the first rebuilt the sets.
func (h *harness) noRebuild() {
	h.t.Helper()
	if slices.Contains(h.r.Calls()[1:], "reconcile") {
		h.t.Errorf("calls %v: a batch was refused and the sets rebuilt", h.r.Calls())
	}
}

// TestRenewOverExpiringCopy: a new decision for an element whose copy was
// left to time out must end with the new timeout, whether the old copy is
// still in the set or not. A plain add would keep the old timeout on many
// kernels (the recorder does what they do), and the address would drop
// out of the set while the bouncer believes it banned.
func TestRenewOverExpiringCopy(t *testing.T) {
	for _, c := range []struct {
		name     string
		newAt    time.Duration // when the 1h decision arrives
		newValue string
	}{
		{"copy lingering, decision after", 59500 * time.Millisecond, "192.0.2.7"},
		{"copy expiring, decision in the same tick", 59 * time.Second, "192.0.2.7"},
		{"range lingering", 59500 * time.Millisecond, "198.51.100.0/24"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, false)
			h.r.SetClock(h.clk.now)
			p, err := ParseValue(map[bool]string{true: "Range", false: "Ip"}[strings.Contains(c.newValue, "/")], c.newValue)
			if err != nil {
				t.Fatal(err)
			}
			h.tick([]*models.Decision{ban(1, c.newValue, "1m")}, nil, p.String())
			if c.newAt > 59*time.Second {
				h.at(59 * time.Second)
				h.tick(nil, nil, p.String()) // left to time out
			}
			h.at(c.newAt)
			h.tick([]*models.Decision{ban(2, c.newValue, "1h")}, nil, p.String())
			if last := h.r.LastChanges(); len(last.Renew) != 1 || len(last.Add) != 0 {
				t.Errorf("want one renewal, got %+v", last)
			}
			h.at(2 * time.Minute)
			h.tick(nil, nil, p.String())
			if left := h.r.Left(p); left < 50*time.Minute {
				t.Errorf("%s has %s left in the kernel, want about 58m", p, left)
			}
			h.noRebuild()
		})
	}
}

// TestOverlapsCheckedWithinAnOrigin: sets are per origin, so a range
// inside another origin's wider range goes in at once, while one inside a
// wider range of its own origin (here, one still lingering in that
// origin's set after the wider range moved to another origin) waits until
// the kernel can take it.
func TestOverlapsCheckedWithinAnOrigin(t *testing.T) {
	h := newHarness(t, false)
	h.r.SetClock(h.clk.now)
	h.tick([]*models.Decision{from("CAPI", ban(1, "198.51.0.0/16", "5h")), from("cscli", ban(2, "198.51.100.0/24", "5h"))},
		nil, "198.51.0.0/16", "198.51.100.0/24")

	g := newHarness(t, false)
	g.r.SetClock(g.clk.now)
	g.tick([]*models.Decision{from("A", ban(1, "203.0.113.0/24", "1m"))}, nil, "203.0.113.0/24")
	g.at(59 * time.Second) // A's copy left to time out
	g.tick(nil, nil, "203.0.113.0/24")
	g.at(59500 * time.Millisecond)
	// The /24 comes back under B (B's set), and A bans a /25 inside it:
	// A's expiring /24 is still in A's set, so the /25 must wait.
	g.tick([]*models.Decision{from("B", ban(2, "203.0.113.0/24", "1h")), from("A", ban(3, "203.0.113.0/25", "1h"))},
		nil, "203.0.113.0/24", "203.0.113.0/24")
	g.at(62 * time.Second)
	g.tick(nil, nil, "203.0.113.0/24", "203.0.113.0/25")
	if got := g.r.Origin(netip.MustParsePrefix("203.0.113.0/25")); got != "A" {
		t.Errorf("/25 in %q's set, want A's", got)
	}
	g.noRebuild()
}

// TestDropCountersRunOnAcrossRebuilds: a rebuild resets the kernel
// counters; what they held is kept, so the exported counters never go
// back. A previous run's leftovers, found at start, are not this
// process's and are not counted.
func TestDropCountersRunOnAcrossRebuilds(t *testing.T) {
	k := DropKey{"apiban", "ipv4"}
	r := &counting{Recorder: bouncertest.NewRecorder(false), c: map[DropKey]Counters{k: {Packets: 100, Bytes: 1000}}, resets: true}
	b := New(r, Options{})
	ctx := context.Background()
	full := b.Tick(ctx, &models.DecisionsStreamResponse{New: []*models.Decision{from("apiban", ban(1, "192.0.2.1", "1h"))}}, true)
	r.c[k] = Counters{Packets: 7, Bytes: 70}
	r.FailNext() // the next tick is refused: rebuild
	full = b.Tick(ctx, &models.DecisionsStreamResponse{New: []*models.Decision{from("apiban", ban(2, "192.0.2.2", "1h"))}}, full)
	if full || !slices.Equal(r.Calls(), []string{"reconcile", "apply", "reconcile"}) {
		t.Fatalf("calls %v", r.Calls())
	}
	r.c[k] = Counters{Packets: 2, Bytes: 20}
	got, ok := b.Dropped()
	if want := (Counters{Packets: 9, Bytes: 90}); !ok || got[k] != want {
		t.Errorf("dropped %v, want %v (7 before the rebuild, 2 after, none of the leftovers' 100)", got, want)
	}
}

// capped is a recorder whose sets take timeouts up to max, like ipset's.
type capped struct {
	*bouncertest.Recorder
	max time.Duration
}

func (c capped) MaxTimeout() time.Duration { return c.max }

func (c capped) Apply(ctx context.Context, ch Changes) error {
	for _, e := range slices.Concat(ch.Refresh, ch.Renew, ch.Add) {
		if e.Timeout > c.max {
			return errors.New("timeout over the limit: " + e.Timeout.String())
		}
	}
	return c.Recorder.Apply(ctx, ch)
}

// TestBanLongerThanTheKernelTakes: a 60-day ban with a 10-day kernel limit
// is held for 10 days at a time, refreshed once half of that has gone (not
// at every tick), and stays in the kernel for the whole 60 days.
func TestBanLongerThanTheKernelTakes(t *testing.T) {
	h := newHarness(t, true)
	h.r.SetClock(h.clk.now)
	day := 24 * time.Hour
	h.b = New(capped{h.r, 10 * day}, Options{Now: h.clk.now})
	h.tick([]*models.Decision{ban(1, "192.0.2.7", "1440h")}, nil, "192.0.2.7/32")
	ip := netip.MustParsePrefix("192.0.2.7/32")
	if left := h.r.Left(ip); left != 10*day {
		t.Fatalf("kernel timeout %s, want the 10-day limit", left)
	}
	for at := time.Hour; at < 60*day-time.Hour; at += 6 * time.Hour {
		h.at(at)
		h.tick(nil, nil, "192.0.2.7/32")
	}
	refreshes := 0
	for _, c := range h.r.Changes() {
		refreshes += len(c.Refresh)
	}
	// Every 5 days, for 60 days: 11 refreshes, not one per tick.
	if refreshes < 10 || refreshes > 12 {
		t.Errorf("%d refreshes in 60 days, want about 11", refreshes)
	}
	h.at(60*day + time.Minute)
	h.tick(nil, nil)
	h.noRebuild()
}

// A resync forgets the logged-once marks of skipped decisions LAPI no
// longer holds (LAPI never reports them deleted), and keeps the others.
func TestResyncForgetsSkipsLAPINoLongerHolds(t *testing.T) {
	r := bouncertest.NewRecorder(false)
	b := New(r, Options{MinPrefixV4: 16})
	answers := make(chan Answer)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- b.RunAnswers(ctx, answers) }()
	answers <- Answer{Full: true, DecisionsStreamResponse: &models.DecisionsStreamResponse{New: []*models.Decision{
		ban(1, "45.0.0.0/8", "1h"), ban(2, "46.0.0.0/8", "1h"), ban(3, "198.51.100.1", "1h")}}}
	answers <- Answer{DecisionsStreamResponse: &models.DecisionsStreamResponse{}}
	if n := b.SkipMarks(); n != 2 {
		t.Fatalf("%d skip marks after two too-wide decisions, want 2", n)
	}
	answers <- Answer{Full: true, DecisionsStreamResponse: &models.DecisionsStreamResponse{New: []*models.Decision{
		ban(2, "46.0.0.0/8", "1h"), ban(3, "198.51.100.1", "1h")}}}
	answers <- Answer{DecisionsStreamResponse: &models.DecisionsStreamResponse{}}
	if n := b.SkipMarks(); n != 1 {
		t.Fatalf("%d skip marks after a resync without decision 1, want 1", n)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
