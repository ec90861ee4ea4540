package lapitest

import (
	"net/http"
	"testing"
)

// The harness itself: LAPI starts, cscli reaches it, and a decision added
// with cscli is listed back with its origin.
func TestHarnessRoundTrip(t *testing.T) {
	l := Start(t)
	l.Cscli(t, "decisions", "add", "-i", "192.0.2.10", "-d", "1h")
	ds := l.Decisions(t, "cscli")
	if len(ds) != 1 || ds[0].Value != "192.0.2.10" || ds[0].Origin != "cscli" {
		t.Fatalf("decisions: %+v", ds)
	}
	l.Stop()
	// cscli retries for minutes against a dead LAPI; probe the port instead.
	if resp, err := http.Get(l.URL + "health"); err == nil {
		resp.Body.Close()
		t.Fatal("LAPI still answers after Stop")
	}
	l.Restart(t)
	if ds := l.Decisions(t, "cscli"); len(ds) != 1 {
		t.Fatalf("after restart: %+v", ds)
	}
}
