package sip

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/source/apiban"
)

// The bridge's own APIBAN client, pointed at the mirror, pulls 10,000
// LAPI decisions page by page and gets exactly LAPI's set, with v1 and
// v2; the bridge restarts in the middle of the v1 pull and the client
// goes on with its cursor: nothing skipped, nothing repeated.
func TestClientPullsMirrorAcrossRestart(t *testing.T) {
	e := newEnv(t, freePort(t, "127.0.0.1"))
	var values strings.Builder
	for i := range 10000 {
		fmt.Fprintf(&values, "11.%d.%d.1\n", i/250, i%250)
	}
	file := writeFile(t, filepath.Join(e.dir, "values.txt"), values.String())
	e.lapi.Cscli(t, "decisions", "import", "-i", file, "--format", "values", "-d", "24h")
	want := e.lapiSet("cscli", "cscli-import")
	if len(want) != 10000 {
		t.Fatalf("LAPI holds %d decisions, want 10000", len(want))
	}

	d := e.start()
	got := map[netip.Prefix]int{}
	c := newMirrorClient(t, e, "v1")
	cursor, last := pull(t, c, got, "", 10)
	if last || len(got) != 2500 {
		t.Fatalf("after 10 pages: %d entries, last %v", len(got), last)
	}
	d.Stop()
	e.start()
	if _, last = pull(t, newMirrorClient(t, e, "v1"), got, cursor, 1000); !last {
		t.Fatal("the pull did not end")
	}
	assertSame(t, got, want)
	out := e.status()
	for _, wantRow := range []string{
		"is the daemon's (PID", // the metrics port's socket, checked in /proc
		fmt.Sprintf("enabled on %s: 10000 addresses and ranges served to 1 keys", e.listen),
		"none since the daemon started (every 15m)", // mirror resyncs
	} {
		if !strings.Contains(out, wantRow) {
			t.Errorf("status has no %q:\n%s", wantRow, out)
		}
	}

	got = map[netip.Prefix]int{}
	if _, last = pull(t, newMirrorClient(t, e, "v2"), got, "", 1000); !last {
		t.Fatal("the v2 pull did not end")
	}
	assertSame(t, got, want)
}

func newMirrorClient(t *testing.T, e *env, version string) *apiban.Client {
	t.Helper()
	c, err := apiban.New(apiban.Config{BaseURL: "http://" + e.listen, APIKey: mirrorKey, Version: version, Set: "sip",
		RateWindow: time.Minute, Timeout: 10 * time.Second, MaxRetries: 3, MaxPages: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// pull takes up to pages pages after cursor into got and returns the
// cursor to go on with and whether the list ended.
func pull(t *testing.T, c *apiban.Client, got map[netip.Prefix]int, cursor string, pages int) (string, bool) {
	t.Helper()
	for range pages {
		b, err := c.Next(context.Background(), cursor)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range b.Prefixes {
			got[p]++
		}
		if b.Cursor != "" {
			cursor = b.Cursor
		}
		if b.Last {
			return cursor, true
		}
	}
	return cursor, false
}

func assertSame(t *testing.T, got map[netip.Prefix]int, want map[string]bool) {
	t.Helper()
	for p, n := range got {
		if n != 1 || !want[p.Addr().String()] {
			t.Fatalf("%s pulled %d times, in LAPI: %v", p, n, want[p.Addr().String()])
		}
	}
	if len(got) != len(want) {
		t.Fatalf("pulled %d entries, LAPI holds %d", len(got), len(want))
	}
}
