package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/apibansim"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/bridgetest"
)

// withObservability gives the daemon a known metrics port, a 10s poll and
// its log in a file of the test's directory.
func withObservability(port int) envOpt {
	return func(e *env, c *bridgetest.Config) {
		c.Prometheus.ListenPort = &port
		c.LogMode, c.LogDir = "file", e.dir
	}
}

// notifySocket is a fake systemd: it collects sd_notify datagrams.
type notifySocket struct {
	path string
	mu   sync.Mutex
	msgs []string
}

func listenNotify(t *testing.T) *notifySocket {
	t.Helper()
	n := &notifySocket{path: filepath.Join(t.TempDir(), "notify.sock")}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: n.path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	go func() {
		buf := make([]byte, 4096)
		for {
			k, err := conn.Read(buf)
			if err != nil {
				return
			}
			n.mu.Lock()
			n.msgs = append(n.msgs, string(buf[:k]))
			n.mu.Unlock()
		}
	}()
	return n
}

func (n *notifySocket) count(prefix string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	c := 0
	for _, m := range n.msgs {
		for _, line := range strings.Split(m, "\n") {
			if strings.HasPrefix(line, prefix) {
				c++
			}
		}
	}
	return c
}

// scrape reads /metrics into name{labels} -> value.
func scrape(t *testing.T, base string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !bridgetest.AssertNoSecrets(t, line, apiKey, password) { // every line, labels and help text included
			t.FailNow()
		}
		if !strings.HasPrefix(line, "crowdsec_apiban_bridge_") && !strings.HasPrefix(line, "go_gc_gomemlimit_bytes ") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		out[strings.TrimPrefix(line[:i], "crowdsec_apiban_bridge_")] = v
	}
	return out
}

type healthz struct {
	code int
	body map[string]any
	raw  string
}

func getHealth(t *testing.T, base string) healthz {
	t.Helper()
	resp, err := http.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	bridgetest.AssertNoSecrets(t, string(raw), apiKey, password)
	h := healthz{code: resp.StatusCode, raw: string(raw)}
	if err := json.Unmarshal(raw, &h.body); err != nil {
		t.Fatalf("/healthz body %q: %v", raw, err)
	}
	return h
}

func freePort(t *testing.T) int {
	t.Helper()
	// Below the kernel's ephemeral range (32768 and up), so no port-0 bind
	// elsewhere, such as a LAPI started by a suite running in parallel, can
	// take the port between this check and the daemon's own bind.
	for range 100 {
		port := 20000 + rand.IntN(10000)
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			ln.Close()
			return port
		}
	}
	t.Fatal("no free port in 20000-29999")
	return 0
}

// The running daemon's /metrics and /healthz agree with what LAPI and the
// simulator saw; it speaks sd_notify and logs to its file.
func TestMetricsHealthNotifyAndLogFile(t *testing.T) {
	port := freePort(t)
	e := newEnv(t, withObservability(port))
	e.setConfig(func(c *bridgetest.Config) { c.APIBAN.PollInterval, c.APIBAN.RateWindow = 10*time.Second, time.Second })
	want := feed(e, 120, 11) // 121 pushed; 3 not public + 1 allowlisted, 1 invalid
	// The first request is refused with a 429: retried after rate_window,
	// and counted.
	e.sim.FailNext(apibansim.Fault429)
	notify := listenNotify(t)
	d := e.daemon("NOTIFY_SOCKET="+notify.path, "WATCHDOG_USEC=400000")
	stderr := d.Log
	base := fmt.Sprintf("http://127.0.0.1:%d", port)

	bridgetest.Eventually(t, 30*time.Second, "/healthz", func() bool {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == http.StatusOK
	})
	e.assertExactly(want)
	m := scrape(t, base)
	checks := map[string]float64{
		`pushed_total`:                        float64(len(e.decisions())),
		`active_decisions`:                    float64(len(want)),
		`fetched_total`:                       125,
		`skipped_total{reason="invalid"}`:     1,
		`skipped_total{reason="allowlisted"}`: 4,
		`syncs_total{outcome="success"}`:      1,
		`syncs_total{outcome="failure"}`:      0,
		`apiban_requests_total`:               float64(e.sim.Requests()),
		`apiban_rate_limited_total`:           float64(e.sim.RateLimited()),
		// The binary's own soft memory limit, with no GOMEMLIMIT set
		// (docs/operations.md, "Memory").
		`go_gc_gomemlimit_bytes`: 64 << 20,
	}
	if e.sim.RateLimited() != 1 {
		t.Errorf("the simulator answered %d 429s, want 1", e.sim.RateLimited())
	}
	for k, v := range checks {
		if got, ok := m[k]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
	if ts := m["last_success_timestamp_seconds"]; time.Since(time.Unix(int64(ts), 0)) > time.Minute {
		t.Errorf("last_success_timestamp_seconds = %v, not recent", ts)
	}
	h := getHealth(t, base)
	if h.body["status"] != "ok" || h.body["active_decisions"] != float64(len(want)) {
		t.Errorf("/healthz: %s", h.raw)
	}

	// LAPI goes away: the next sync fails, counted as a LAPI error; one
	// failure is not yet unhealthy.
	e.lapi.Stop()
	bridgetest.Eventually(t, 40*time.Second, "a lapi error counted", func() bool { return scrape(t, base)[`errors_total{kind="lapi"}`] >= 1 })
	m = scrape(t, base)
	if m[`syncs_total{outcome="failure"}`] < 1 || m[`errors_total{kind="state"}`] != 0 {
		t.Errorf("after LAPI stopped: failures %v, state errors %v", m[`syncs_total{outcome="failure"}`], m[`errors_total{kind="state"}`])
	}
	if h := getHealth(t, base); h.code != http.StatusOK || h.body["last_error_kind"] != "lapi" {
		t.Errorf("/healthz after one LAPI failure: %d %s", h.code, h.raw)
	}

	if notify.count("READY=1") != 1 || notify.count("WATCHDOG=1") < 2 {
		t.Errorf("sd_notify: READY %d, WATCHDOG %d", notify.count("READY=1"), notify.count("WATCHDOG=1"))
	}
	d.Stop()
	if notify.count("STOPPING=1") != 1 {
		t.Error("no STOPPING=1 on SIGTERM")
	}
	logged, err := os.ReadFile(filepath.Join(e.dir, "crowdsec-apiban-bridge.log"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(logged), `msg="sync finished"`) || strings.Contains(stderr.String(), `msg="sync finished"`) {
		t.Errorf("log_mode file: the file lacks the sync line or stderr has it\nfile:\n%s\nstderr:\n%s", logged, stderr.String())
	}
	bridgetest.AssertNoSecrets(t, string(logged)+stderr.String(), apiKey, password)
	if _, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second); err == nil {
		t.Error("the metrics port is still open after exit")
	}
}
