package e2e

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bridge/state"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/apibansim"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/bridgetest"
)

func withSets(sets ...string) envOpt {
	return func(_ *env, c *bridgetest.Config) { c.APIBAN.Sets = sets }
}

// loadState reads one set's state file.
func (e *env) loadState(path string) *state.State {
	e.t.Helper()
	st, err := state.Load(path)
	if err != nil {
		e.t.Fatal(err)
	}
	return st
}

// Both APIBAN sets through one bridge and a real LAPI: each set's
// decisions carry its own scenario, each set's cursor lives in its own
// state file, and when LAPI loses one set's alerts only that set is
// repaired: the other set's engine neither sees the loss nor the first
// set's alerts.
func TestBothSetsEachWithItsScenarioStateAndRepair(t *testing.T) {
	e := newEnv(t, withSets("sip", "http"))
	all := apibansim.PublicIPv4s(50, 31)
	sip, http := all[:30], all[30:]
	e.sim.AddSet(apibansim.SetSIP, sip...)
	e.sim.AddSet(apibansim.SetHTTP, http...)
	e.mustSync()
	e.assertExactly(all)
	wantScenario := map[string]string{}
	for _, v := range sip {
		wantScenario[v] = "apiban/sip-blocklist"
	}
	for _, v := range http {
		wantScenario[v] = "apiban/http-blocklist"
	}
	for v, d := range e.decisions() {
		if d.Scenario != wantScenario[v] {
			t.Fatalf("%s: scenario %q, want %q", v, d.Scenario, wantScenario[v])
		}
	}

	httpState := filepath.Join(filepath.Dir(e.state), "state-http.json")
	sipSt, httpSt := e.loadState(e.state), e.loadState(httpState)
	if sipSt.Active.Len() != 30 || httpSt.Active.Len() != 20 {
		t.Fatalf("state files hold %d (sip) and %d (http) decisions, want 30 and 20", sipSt.Active.Len(), httpSt.Active.Len())
	}
	if sipSt.Cursor == "" || httpSt.Cursor == "" || sipSt.Cursor == httpSt.Cursor {
		t.Fatalf("cursors sip %q, http %q: want each set's own", sipSt.Cursor, httpSt.Cursor)
	}

	// LAPI loses http's alerts (and their decisions); sip's stay.
	e.lapi.Cscli(t, "alerts", "delete", "--scenario", "apiban/http-blocklist")
	if n := len(e.lapi.Decisions(t, "apiban")); n != 30 {
		t.Fatalf("after deleting http's alerts LAPI holds %d apiban decisions, want sip's 30", n)
	}
	r := e.mustSync()
	e.assertExactly(all)
	repaired := regexp.MustCompile(`repaired=(\d+)[^\n]*set=(\w+)|set=(\w+)[^\n]*repaired=(\d+)`).FindAllStringSubmatch(r.Stderr, -1)
	got := map[string]string{}
	for _, m := range repaired {
		if m[2] != "" {
			got[m[2]] = m[1]
		} else {
			got[m[3]] = m[4]
		}
	}
	if got["http"] != "20" || got["sip"] != "0" {
		t.Fatalf("repaired per set %v, want http 20 and sip 0:\n%s", got, r.Stderr)
	}
	// Only http's engine had cause to read LAPI back: sip's per-sync
	// check sees its own alerts only, not http's (gone or newer).
	readBack := 0
	for _, line := range strings.Split(r.Stderr, "\n") {
		if strings.Contains(line, "decisions back from LAPI") || strings.Contains(line, "LAPI had lost decisions") {
			readBack++
			if !strings.Contains(line, "set=http") {
				t.Fatalf("a set other than http read LAPI back:\n%s", line)
			}
		}
	}
	if readBack != 1 {
		t.Fatalf("http read LAPI back %d times, want once:\n%s", readBack, r.Stderr)
	}
	if st := e.loadState(httpState); st.LastRepaired != 20 {
		t.Fatalf("http state records the last repair as %d, want 20", st.LastRepaired)
	}
	if st := e.loadState(e.state); !st.LastRepair.IsZero() {
		t.Fatalf("sip state records a repair at %s, want none", st.LastRepair)
	}

	status := e.run("status")
	for _, want := range []string{"http (scenario apiban/http-blocklist)", "20 active decisions of origin apiban, scenario apiban/http-blocklist",
		"30 active decisions of origin apiban, scenario apiban/sip-blocklist", httpState} {
		if !strings.Contains(status.Stdout, want) {
			t.Fatalf("status lacks %q:\n%s", want, status.Stdout)
		}
	}

	// check reads every set's state file: an http address is the http
	// set's, and the sip set's state never pushed it.
	check := e.run("check", http[0])
	wantLines(t, "check of an http address", check.Stdout,
		`^bridge state \(sip\)\s+not pushed by this bridge$`,
		`^bridge state \(http\)\s+pushed, decision until `)

	// flush expires each set's decisions and resets each state file.
	if r := e.run("flush"); r.Code != 0 || !strings.Contains(r.Stdout, "expired 20 decisions of origin apiban, scenario apiban/http-blocklist") ||
		!strings.Contains(r.Stdout, "expired 30 decisions of origin apiban, scenario apiban/sip-blocklist") {
		t.Fatalf("flush exited %d:\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	e.assertExactly(nil)
	if sipSt, httpSt := e.loadState(e.state), e.loadState(httpState); sipSt.Cursor != "" || httpSt.Cursor != "" {
		t.Fatalf("after flush the cursors are sip %q, http %q; want both reset", sipSt.Cursor, httpSt.Cursor)
	}
}

// withLimitedSim replaces the simulator with one that enforces a limit of
// max requests per window (answering 429 past it), and paces the bridge
// at exactly that limit.
func withLimitedSim(max int, window time.Duration) envOpt {
	return func(e *env, c *bridgetest.Config) {
		e.sim.Close()
		e.sim = apibansim.New(apibansim.Options{Key: apiKey, MaxRequests: max, RateWindow: window})
		e.t.Cleanup(e.sim.Close)
		c.APIBAN.URL = e.sim.URL()
		c.APIBAN.MaxRequests, c.APIBAN.RateWindow = new(max), window
	}
}

// The sets share one pacer: APIBAN limits the key. Six requests between
// the two sets (three each: 500 entries end with an empty page) against
// a limit of three per window: a pacer per set would let each set send
// its three at once, and meet 429s.
func TestSetsShareOneRateLimit(t *testing.T) {
	e := newEnv(t, withSets("sip", "http"), withLimitedSim(3, 2*time.Second))
	all := apibansim.PublicIPv4s(1100, 32)
	e.sim.AddSet(apibansim.SetSIP, all[:600]...)
	e.sim.AddSet(apibansim.SetHTTP, all[600:]...)
	e.mustSync()
	e.assertExactly(all)
	if e.sim.Requests() != 6 || e.sim.RateLimited() != 0 {
		t.Fatalf("the simulator saw %d requests and answered %d 429s; want 6 and none", e.sim.Requests(), e.sim.RateLimited())
	}
}

// The daemon syncs both sets every round: what either set lists later
// reaches LAPI under its scenario, and each set's state file holds its
// own decisions.
func TestDaemonSyncsBothSets(t *testing.T) {
	e := newEnv(t, withSets("sip", "http"))
	e.setConfig(func(c *bridgetest.Config) { c.APIBAN.PollInterval = 10 * time.Second })
	all := apibansim.PublicIPv4s(40, 33)
	e.sim.AddSet(apibansim.SetSIP, all[:20]...)
	d := e.daemon()
	bridgetest.Eventually(t, 30*time.Second, "sip's decisions in LAPI", func() bool { return len(e.decisions()) == 20 })
	e.sim.AddSet(apibansim.SetHTTP, all[20:]...)
	bridgetest.Eventually(t, 30*time.Second, "http's decisions in LAPI", func() bool { return len(e.decisions()) == 40 })
	e.assertExactly(all)
	for _, v := range all[20:] {
		if s := e.decisions()[v].Scenario; s != "apiban/http-blocklist" {
			t.Fatalf("%s: scenario %q, want apiban/http-blocklist", v, s)
		}
	}
	out := d.Stop()
	if !strings.Contains(out, "stopped") {
		t.Errorf("no clean stop logged:\n%s", out)
	}
	httpState := filepath.Join(filepath.Dir(e.state), "state-http.json")
	if sip, http := e.loadState(e.state), e.loadState(httpState); sip.Active.Len() != 20 || http.Active.Len() != 20 {
		t.Fatalf("state files hold %d (sip) and %d (http), want 20 each", sip.Active.Len(), http.Active.Len())
	}
}
