package apiban_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/source/apiban"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/apibansim"
)

// Hostile answers are final: each is one request, an ErrBadResponse whose
// text names the value at fault, and no page.

// shownURL is how errors show the list request at cursor.
func shownURL(sim *apibansim.Sim, version, cursor string) string {
	if version == "v1" {
		return "GET " + sim.URL() + "/api/REDACTED/banned/" + cursor
	}
	return "POST " + sim.URL() + "/api/get"
}

// wantRefused checks err exactly and that nothing was retried.
func wantRefused(t *testing.T, c *apiban.Client, requests int, b any, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, got %v; want %q", b, want)
	}
	if err.Error() != want || !errors.Is(err, apiban.ErrBadResponse) || len(classes(err)) != 1 {
		t.Fatalf("error %q (classes %v),\nwant %q (bad-response only)", err, classes(err), want)
	}
	if c.Requests() != requests {
		t.Fatalf("%d requests, want %d: a hostile answer is not retried", c.Requests(), requests)
	}
}

func TestOverlongPageIsRefusedWhole(t *testing.T) {
	for _, version := range []string{"v1", "v2"} {
		t.Run(version, func(t *testing.T) {
			sim := newSim(t, apibansim.Options{})
			sim.FailNext(apibansim.FaultOverlong)
			c := newClient(t, fastConfig(sim, version))
			b, err := c.Next(context.Background(), "")
			wantRefused(t, c, 1, b, err, "apiban: bad response: "+shownURL(sim, version, "100")+
				": page of 251 entries, more than APIBAN's 250 per page: refused whole (attempt 1 of 3)")
			if len(b.Prefixes) != 0 || b.Cursor != "" {
				t.Fatalf("a refused page came back as %d prefixes, cursor %q", len(b.Prefixes), b.Cursor)
			}
		})
	}
}

// The page seen on a real install: 450,000 entries, within the body cap
// once that is raised, still refused by its length.
func TestPageOf450000IsRefused(t *testing.T) {
	sim := newSim(t, apibansim.Options{OverlongEntries: 450_000})
	sim.FailNext(apibansim.FaultOverlong)
	cfg := fastConfig(sim, "v2")
	cfg.MaxBodyBytes = 32 << 20
	c := newClient(t, cfg)
	b, err := c.Next(context.Background(), "")
	wantRefused(t, c, 1, b, err, "apiban: bad response: "+shownURL(sim, "v2", "")+
		": page of 450000 entries, more than APIBAN's 250 per page: refused whole (attempt 1 of 3)")
}

func TestCyclingCursorEndsThePass(t *testing.T) {
	for _, version := range []string{"v1", "v2"} {
		t.Run(version, func(t *testing.T) {
			sim := newSim(t, apibansim.Options{})
			sim.Add(apibansim.PublicIPv4s(10, 3)...)
			sim.FailNext(apibansim.FaultCursorCycle, apibansim.FaultCursorCycle, apibansim.FaultCursorCycle)
			c := newClient(t, fastConfig(sim, version))
			ctx := context.Background()
			cursor := ""
			for _, want := range []string{"1000", "2000"} {
				b, err := c.Next(ctx, cursor)
				if err != nil || b.Cursor != want || b.Last || len(b.Prefixes) != apiban.PageSize {
					t.Fatalf("Next(%q) = cursor %q last %v, %d prefixes, %v; want a full page to %s",
						cursor, b.Cursor, b.Last, len(b.Prefixes), err, want)
				}
				cursor = b.Cursor
			}
			b, err := c.Next(ctx, cursor)
			wantRefused(t, c, 3, b, err, "apiban: bad response: "+shownURL(sim, version, "2000")+
				": page ID 1000 was already returned by page 1 of this pass (started at cursor 100): the feed cycles")
			// The error ended the pass: a new one reads the real list.
			got, _, _ := pull(t, c, "")
			samePrefixes(t, got, hostPrefixes(apibansim.PublicIPv4s(10, 3)))
		})
	}
}

func TestDecreasingCursorIsRefused(t *testing.T) {
	for _, version := range []string{"v1", "v2"} {
		t.Run(version, func(t *testing.T) {
			sim := newSim(t, apibansim.Options{})
			sim.FailNext(apibansim.FaultCursorBack, apibansim.FaultCursorBack)
			c := newClient(t, fastConfig(sim, version))
			b, err := c.Next(context.Background(), "")
			if err != nil || b.Cursor != "3000" {
				t.Fatalf("first page: cursor %q, %v; want 3000", b.Cursor, err)
			}
			b, err = c.Next(context.Background(), b.Cursor)
			wantRefused(t, c, 2, b, err, "apiban: bad response: "+shownURL(sim, version, "3000")+
				": page ID 2000 is lower than the requested cursor 3000: the feed went back")
		})
	}
}

// A page ID below the first request's "100" goes back too.
func TestCursorBelowTheStartIsRefused(t *testing.T) {
	srv := pageServer(t, []string{"99"})
	cfg := testConfig(srv.URL, "test-key-1234", "v2")
	cfg.MaxRetries = 2
	c := newClient(t, cfg)
	b, err := c.Next(context.Background(), "")
	wantRefused(t, c, 1, b, err, "apiban: bad response: POST "+srv.URL+
		"/api/get: page ID 99 is lower than the requested cursor 100: the feed went back")
}

// pageServer answers full pages with the given IDs in turn, then the end.
func pageServer(t *testing.T, ids []string) *httptest.Server {
	t.Helper()
	page := `"ipaddress":["` + strings.Join(apibansim.PublicIPv4s(apiban.PageSize, 5), `","`) + `"]`
	next := make(chan string, len(ids))
	for _, id := range ids {
		next <- id
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case id := <-next:
			_, _ = w.Write([]byte(`{` + page + `,"ID":"` + id + `"}`))
		default:
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"ipaddress":["no new bans"],"ID":"none"}`))
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// Cursors need not be numbers; an opaque one that comes back is a cycle
// all the same, the start cursor included.
func TestOpaqueCursorCycle(t *testing.T) {
	cases := []struct {
		name, start string
		ids         []string
		want        string
	}{
		{"earlier page", "", []string{"a", "b", "c", "b"},
			"page ID b was already returned by page 2 of this pass (started at cursor 100): the feed cycles"},
		{"start cursor", "x", []string{"y", "x"},
			"page ID x is the cursor this pass started from: the feed cycles"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := pageServer(t, tc.ids)
			c := newClient(t, testConfig(srv.URL, "test-key-1234", "v2"))
			cursor := tc.start
			for range len(tc.ids) - 1 {
				b, err := c.Next(context.Background(), cursor)
				if err != nil {
					t.Fatalf("Next(%q): %v", cursor, err)
				}
				cursor = b.Cursor
			}
			b, err := c.Next(context.Background(), cursor)
			wantRefused(t, c, len(tc.ids), b, err, "apiban: bad response: POST "+srv.URL+"/api/get: "+tc.want)
		})
	}
}

func TestPassLongerThanMaxPagesEnds(t *testing.T) {
	sim := newSim(t, apibansim.Options{StartID: 5000})
	sim.Add(apibansim.PublicIPv4s(4*apiban.PageSize, 7)...)
	cfg := fastConfig(sim, "v2")
	cfg.MaxPages = 2
	c := newClient(t, cfg)
	ctx := context.Background()
	b1, err1 := c.Next(ctx, "")
	b2, err2 := c.Next(ctx, b1.Cursor)
	if err1 != nil || err2 != nil {
		t.Fatalf("pages 1 and 2: %v, %v", err1, err2)
	}
	b, err := c.Next(ctx, b2.Cursor)
	wantRefused(t, c, 3, b, err, "apiban: bad response: POST "+sim.URL()+"/api/get: "+
		"pass started at cursor 100 is still going after 2 full pages (500 entries), the limit per pass: the feed does not end")
	// Resuming from the last good cursor is a new pass, as the engine
	// does on its next sync: the feed is read to its end.
	rest, last, _ := pull(t, c, b2.Cursor)
	if len(rest) != 2*apiban.PageSize || last != sim.LastID() {
		t.Fatalf("resumed pass read %d entries to %q, want 500 to %q", len(rest), last, sim.LastID())
	}
}

// Exactly MaxPages full pages and the end of the list is a whole pass:
// the default (400) takes a list of 100,000.
func TestPassOfMaxPagesIsWhole(t *testing.T) {
	sim := newSim(t, apibansim.Options{})
	ips := apibansim.PublicIPv4s(3*apiban.PageSize, 8)
	sim.Add(ips...)
	cfg := fastConfig(sim, "v1")
	cfg.MaxPages = 3
	got, last, _ := pull(t, newClient(t, cfg), "")
	samePrefixes(t, got, hostPrefixes(ips))
	if last != sim.LastID() {
		t.Fatalf("cursor %q, want %q", last, sim.LastID())
	}
}

func TestRedirectIsNotFollowed(t *testing.T) {
	for _, version := range []string{"v1", "v2"} {
		t.Run(version, func(t *testing.T) {
			sim := newSim(t, apibansim.Options{})
			sim.FailNext(apibansim.Fault302)
			cfg := fastConfig(sim, version)
			// Even a caller's client that follows redirects does not here.
			cfg.HTTPClient = &http.Client{}
			c := newClient(t, cfg)
			b, err := c.Next(context.Background(), "")
			location := "/moved/api/get"
			if version == "v1" {
				location = "/moved/api/REDACTED/banned/100"
			}
			wantRefused(t, c, 1, b, err, "apiban: bad response: "+shownURL(sim, version, "100")+
				": APIBAN answered 302 redirect to "+location+"; redirects are not followed (attempt 1 of 3)")
			if other := sim.Stats().ByEndpoint[apibansim.EndpointOther]; other != 0 || sim.Requests() != 1 {
				t.Fatalf("the simulator saw %d requests, %d at the redirect target; want 1 and 0", sim.Requests(), other)
			}
			if cfg.HTTPClient.CheckRedirect != nil {
				t.Fatal("the caller's HTTP client was changed")
			}
		})
	}
}

func TestCheckRedirectIsNotFollowed(t *testing.T) {
	sim := newSim(t, apibansim.Options{})
	sim.FailNext(apibansim.Fault302)
	c := newClient(t, fastConfig(sim, "v1"))
	_, err := c.Check(context.Background(), netip.MustParseAddr("192.0.2.7"))
	want := "apiban: bad response: GET " + sim.URL() + "/api/REDACTED/check/192.0.2.7: " +
		"APIBAN answered 302 redirect to /moved/api/REDACTED/check/192.0.2.7; redirects are not followed"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %q", err, want)
	}
}
