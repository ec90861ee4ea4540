package metrics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bridge"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/source/apiban"
)

type feed struct{ req, limited int }

func (f *feed) Requests() int    { return f.req }
func (f *feed) RateLimited() int { return f.limited }

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newTest() (*Metrics, *clock, *feed) {
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	f := &feed{}
	return New(Options{Version: "v9", PollInterval: time.Minute, Feed: f, Now: c.now}), c, f
}

func TestObserveCountsEveryOutcome(t *testing.T) {
	m, c, f := newTest()
	m.Observe(bridge.Report{Fetched: 10, Invalid: 1, Allowlisted: 2, AlreadyActive: 3, Pushed: 5}, nil, 5)
	c.t = c.t.Add(time.Minute)
	m.Observe(bridge.Report{Fetched: 4, Pushed: 4, Repaired: 7, ReadBack: "LAPI lost the oldest alert"}, nil, 9)
	m.Observe(bridge.Report{}, fmt.Errorf("page 2: %w", apiban.ErrRateLimited), 9)
	m.Observe(bridge.Report{}, &LAPIError{errors.New("connection refused")}, 9)
	f.req, f.limited = 17, 3

	checks := map[string]float64{
		"syncs_total|success":              2,
		"syncs_total|failure":              2,
		"fetched_total|":                   14,
		"pushed_total|":                    9,
		"repaired_total|":                  7,
		"read_backs_total|":                1,
		"skipped_total|allowlisted":        2,
		"skipped_total|invalid":            1,
		"errors_total|apiban_rate_limited": 1,
		"errors_total|lapi":                1,
		"errors_total|state":               0,
		"active_decisions|":                9,
		"apiban_requests_total|":           17,
		"apiban_rate_limited_total|":       3,
		"last_success_timestamp_seconds|":  float64(c.t.Unix()),
	}
	families, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, fam := range families {
		name := strings.TrimPrefix(fam.GetName(), namespace+"_")
		for _, metric := range fam.GetMetric() {
			label := ""
			for _, l := range metric.GetLabel() {
				if l.GetName() != "version" {
					label = l.GetValue()
				}
			}
			v := metric.GetCounter().GetValue() + metric.GetGauge().GetValue()
			got[name+"|"+label] = v
		}
	}
	for k, want := range checks {
		if g, ok := got[k]; !ok || g != want {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, want)
		}
	}
	if _, ok := got["skipped_total|already_active"]; !ok {
		t.Error("skipped_total lacks already_active")
	}
}

func TestHealth(t *testing.T) {
	m, c, _ := newTest()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	get := func() (int, Health) {
		t.Helper()
		resp, err := http.Get(srv.URL + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var h Health
		body, _ := io.ReadAll(resp.Body)
		if err := json.Unmarshal(body, &h); err != nil {
			t.Fatalf("%v: %s", err, body)
		}
		return resp.StatusCode, h
	}
	if code, h := get(); code != 503 || !strings.Contains(h.Reason, "no sync has finished yet") {
		t.Fatalf("before any sync: %d %+v", code, h)
	}
	m.Observe(bridge.Report{}, fmt.Errorf("x: %w", apiban.ErrUnauthorized), 0)
	if code, h := get(); code != 503 || h.LastErrorKind != KindAPIBANUnauthorized || !strings.Contains(h.Reason, "no sync has succeeded yet") {
		t.Fatalf("after a failure: %d %+v", code, h)
	}
	m.Observe(bridge.Report{Cursor: "42"}, nil, 7)
	if code, h := get(); code != 200 || h.Status != "ok" || h.ActiveDecisions != 7 || h.Cursor != "42" || h.LastError != "" {
		t.Fatalf("after a success: %d %+v", code, h)
	}
	// One failure within the window keeps it healthy; silence beyond three
	// poll intervals does not.
	c.t = c.t.Add(2 * time.Minute)
	m.Observe(bridge.Report{}, &LAPIError{errors.New("refused")}, 7)
	if code, h := get(); code != 200 || h.LastErrorKind != KindLAPI {
		t.Fatalf("one failure after a success: %d %+v", code, h)
	}
	c.t = c.t.Add(2 * time.Minute)
	if code, h := get(); code != 503 || !strings.Contains(h.Reason, "more than 3m0s") {
		t.Fatalf("stale: %d %+v", code, h)
	}
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `crowdsec_apiban_bridge_build_info{version="v9"} 1`) {
		t.Errorf("/metrics lacks build_info:\n%.2000s", body)
	}
}

func TestListenReportsBusyPortAndStops(t *testing.T) {
	m, _, _ := newTest()
	addr, serve, err := Listen("127.0.0.1:0", m.Handler())
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := Listen(addr.String(), m.Handler()); err == nil {
		t.Fatal("second listener on a busy port succeeded")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx) }()
	waitUp(t, "http://"+addr.String()+"/metrics")
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("server did not stop")
	}
}

func waitUp(t *testing.T, url string) {
	t.Helper()
	for range 100 {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s never answered", url)
}
