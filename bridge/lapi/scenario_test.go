package lapi_test

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bridge/lapi"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/lapitest"
)

// setClient is a client of one APIBAN set sharing origin apiban.
func setClient(t *testing.T, l *lapitest.LAPI, scenario string) *lapi.Client {
	t.Helper()
	c, err := lapi.New(lapi.Options{
		URL: l.URL, Login: "bridge-test", Password: "s3cret-Pw", UserAgent: "crowdsec-apiban-bridge/test",
		Origin: "apiban", Scenario: scenario, SharedOrigin: true, Type: "ban", Timeout: 30 * time.Second,
		BatchSize: 2, Message: scenario,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Against a real LAPI: two sets under one origin each see only their own
// scenario's alerts in Edge and decisions in Active, and a flush of one
// (SharedOrigin) expires only its own decisions.
func TestSetsUnderOneOriginSeeOnlyTheirScenario(t *testing.T) {
	l := lapitest.Start(t)
	l.AddMachine(t, "bridge-test", "s3cret-Pw")
	sip := setClient(t, l, "apiban/sip-blocklist")
	http := setClient(t, l, "apiban/http-blocklist")
	ctx := context.Background()
	sipP := []netip.Prefix{netip.MustParsePrefix("203.0.113.1/32"), netip.MustParsePrefix("203.0.113.2/32")}
	httpP := []netip.Prefix{netip.MustParsePrefix("198.51.100.1/32"), netip.MustParsePrefix("198.51.100.2/32")}
	sipAlerts, err := sip.Push(ctx, week(sipP...), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	httpAlerts, err := http.Push(ctx, week(httpP...), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	sipIDs, httpIDs := slicesSorted(sipAlerts), slicesSorted(httpAlerts)
	if len(sipIDs) != 1 || len(httpIDs) != 1 || httpIDs[0] <= sipIDs[0] {
		t.Fatalf("alerts sip %v, http %v; want one each, http's newer", sipIDs, httpIDs)
	}
	// sip's newest alert is its own, though http's is newer; http's
	// oldest is its own, though sip's is older.
	assertEdge(t, sip, true, sipIDs[0], true)
	assertEdge(t, http, false, httpIDs[0], true)
	assertActive(t, sip, sipP)
	assertActive(t, http, httpP)

	n, err := http.DeleteOrigin(ctx)
	if err != nil || n != 2 {
		t.Fatalf("http flush: %d, %v; want its 2 decisions expired", n, err)
	}
	assertActive(t, sip, sipP)
	assertActive(t, http, nil)
	assertEdge(t, http, true, 0, false)
	assertEdge(t, sip, false, sipIDs[0], true)
}

func assertActive(t *testing.T, c *lapi.Client, want []netip.Prefix) {
	t.Helper()
	held, err := c.Active(context.Background(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var got []netip.Prefix
	for p := range held.Active {
		got = append(got, p)
	}
	slices.SortFunc(got, netip.Prefix.Compare)
	slices.SortFunc(want, netip.Prefix.Compare)
	if !slices.Equal(got, want) {
		t.Fatalf("Active = %v, want %v", got, want)
	}
}
