package bridge

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/source/neverban"
)

func TestTooWidePrefixesAreRefusedAndCounted(t *testing.T) {
	r := newRig(t)
	r.opts.MinPrefixV4, r.opts.MinPrefixV6 = 24, 48
	r.feed.entries = []netip.Prefix{
		netip.MustParsePrefix("45.1.0.0/16"),   // too wide
		netip.MustParsePrefix("45.2.3.0/23"),   // too wide, just
		netip.MustParsePrefix("45.2.4.0/24"),   // at the limit: pushed
		netip.MustParsePrefix("45.9.9.9/32"),   // pushed
		netip.MustParsePrefix("2a00:1::/32"),   // too wide
		netip.MustParsePrefix("2a00:2::/47"),   // too wide, just
		netip.MustParsePrefix("2a00:3::/48"),   // at the limit: pushed
		netip.MustParsePrefix("2a00:4::5/128"), // pushed
		netip.MustParsePrefix("45.0.0.0/8"),    // too wide
	}
	rep := r.sync(t, r.engine(), false)
	if rep.TooWide != 5 || rep.Pushed != 4 {
		t.Fatalf("report %+v", rep)
	}
	for _, p := range r.lapi.rows {
		if r.opts.tooWide(p) {
			t.Fatalf("%s was pushed", p)
		}
	}
	if f := rep.Fields(); f["too_wide"] != 5 {
		t.Fatalf("log fields %v", f)
	}
}

func TestZeroMinimumAllowsAnyPrefix(t *testing.T) {
	r := newRig(t)
	r.feed.entries = []netip.Prefix{netip.MustParsePrefix("45.0.0.0/8")}
	if rep := r.sync(t, r.engine(), false); rep.Pushed != 1 || rep.TooWide != 0 {
		t.Fatalf("%+v", rep)
	}
}

func TestNeverBanHostAndLAPIAddresses(t *testing.T) {
	r := newRig(t)
	r.opts.NeverBan = neverban.New(
		neverban.Entry{Prefix: netip.MustParsePrefix("45.0.0.7/32"), Reason: neverban.ReasonSelf},
		neverban.Entry{Prefix: netip.MustParsePrefix("2a00:9::1/128"), Reason: neverban.ReasonLAPI},
		neverban.Entry{Prefix: netip.MustParsePrefix("10.0.0.1/32"), Reason: neverban.ReasonGateway})
	r.feed.entries = []netip.Prefix{
		netip.MustParsePrefix("45.0.0.7/32"), // this host
		netip.MustParsePrefix("45.0.0.0/28"), // a range holding it
		netip.MustParsePrefix("2a00:9::/64"), // a v6 range holding the LAPI
		netip.MustParsePrefix("10.0.0.1/32"), // the gateway, private: the allowlist's
		netip.MustParsePrefix("45.0.0.8/32"), // a neighbour: pushed
	}
	rep := r.sync(t, r.engine(), false)
	if rep.Self != 3 || rep.Allowlisted != 1 || rep.Pushed != 1 || r.lapi.rows[0].String() != "45.0.0.8/32" {
		t.Fatalf("report %+v rows %v", rep, r.lapi.rows)
	}
}

func TestFloodCapStopsBeforePushingAndStaysTripped(t *testing.T) {
	r := newRig(t)
	r.feed.add(300)
	r.opts.MaxNewPerSync = 500
	r.opts.BatchSize = 1000
	e := r.engine()
	if rep := r.sync(t, e, false); rep.Pushed != 300 {
		t.Fatalf("first sync under the cap: %+v", rep)
	}
	cursor := r.savedState(t).Cursor

	r.feed.add(501) // a sudden flood, all in one push group
	rep, err := e.Sync(context.Background(), false)
	if !errors.Is(err, ErrFlood) || !rep.Flood {
		t.Fatalf("flood: err %v, report %+v", err, rep)
	}
	for _, want := range []string{"decisions.max_new_per_sync (500)", "501 more waiting"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if len(r.lapi.rows) != 300 || rep.Pushed != 0 {
		t.Fatalf("the flood reached LAPI: %d rows, report %+v", len(r.lapi.rows), rep)
	}
	if got := r.savedState(t).Cursor; got != cursor {
		t.Fatalf("cursor moved from %q to %q past the flood", cursor, got)
	}

	// The same process keeps refusing, without even reading the feed.
	reqs := r.feed.requests
	if _, err := e.Sync(context.Background(), false); !errors.Is(err, ErrFlood) {
		t.Fatalf("second sync: %v", err)
	}
	if r.feed.requests != reqs || len(r.lapi.rows) != 300 {
		t.Fatal("a tripped engine read the feed or pushed")
	}

	// A restart with a higher cap takes the flood in, from the kept cursor.
	r.opts.MaxNewPerSync = 1000
	rep = r.sync(t, r.engine(), false)
	if rep.Pushed != 501 || len(r.lapi.rows) != 801 {
		t.Fatalf("after raising the cap: %+v, rows %d", rep, len(r.lapi.rows))
	}
}

func TestFloodCapKeepsWhatEarlierGroupsPushed(t *testing.T) {
	r := newRig(t)
	r.feed.add(1000)
	r.opts.MaxNewPerSync = 450
	r.opts.BatchSize = 200
	_, err := r.engine().Sync(context.Background(), false)
	if !errors.Is(err, ErrFlood) {
		t.Fatalf("err %v", err)
	}
	// Groups of 250 (one page each): the first fits, the second would
	// reach 500 > 450 and is not pushed.
	if len(r.lapi.rows) != 250 {
		t.Fatalf("%d rows pushed, want 250", len(r.lapi.rows))
	}
	if st := r.savedState(t); st.Cursor != "250" || st.Active.Len() != 250 {
		t.Fatalf("state: cursor %q, %d active", st.Cursor, st.Active.Len())
	}
}

// The address cap counts what the decisions cover, not how many there
// are: IPv4 addresses, and IPv6 /64s.
func TestAddressCapCountsCoveredAddresses(t *testing.T) {
	r := newRig(t)
	r.opts.MaxAddressesPerSync = 1000
	r.opts.MinPrefixV4, r.opts.MinPrefixV6 = 16, 32
	r.feed.entries = []netip.Prefix{
		netip.MustParsePrefix("45.1.0.0/24"),     // 256
		netip.MustParsePrefix("45.2.0.0/24"),     // 512
		netip.MustParsePrefix("2a01:db8::/62"),   // 4 /64s: 516
		netip.MustParsePrefix("2a01:db9::1/128"), // 1: 517
		netip.MustParsePrefix("45.3.0.0/23"),     // 512 more: 1,029, over the cap
	}
	rep, err := r.engine().Sync(context.Background(), false)
	if !errors.Is(err, ErrFlood) || !rep.Flood || rep.Pushed != 0 {
		t.Fatalf("err %v, report %+v: want the address cap to stop the push", err, rep)
	}
	if !strings.Contains(err.Error(), "cover 1029 addresses, more than decisions.max_addresses_per_sync (1000)") {
		t.Fatalf("err %v does not name the count and the key", err)
	}
	if len(r.lapi.rows) != 0 {
		t.Fatalf("LAPI got %d rows past the cap", len(r.lapi.rows))
	}
	for p, want := range map[string]uint64{"45.1.0.0/24": 256, "2a01:db8::/64": 1, "2a01:db8::/48": 65536, "2a01:db8::1/128": 1, "45.0.0.1/32": 1} {
		if got := addresses(netip.MustParsePrefix(p)); got != want {
			t.Errorf("addresses(%s) = %d, want %d", p, got, want)
		}
	}
}
