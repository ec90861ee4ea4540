package e2e

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/apibansim"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/bridgetest"
)

// feed fills the simulator with n public addresses plus entries that must
// never become decisions, and returns the values LAPI must end up with.
func feed(e *env, n int, seed uint64) []string {
	public := apibansim.PublicIPv4s(n, seed)
	e.sim.Add(public...)
	e.sim.Add(
		"10.1.2.3", "192.168.7.7", "100.64.3.3", // never banned: not public
		"198.51.100.20",   // configured allowlist
		"not-an-address",  // invalid: skipped and counted
		"2001:db8:77::15", // IPv6 is fine
	)
	return append(public, "2001:db8:77::15")
}

func TestFullSyncThenIncremental(t *testing.T) {
	e := newEnv(t)
	want := feed(e, 600, 1)
	r := e.mustSync()
	e.assertExactly(want)
	for v, d := range e.decisions() {
		left, err := time.ParseDuration(d.Duration)
		if err != nil || left < 167*time.Hour || left > 168*time.Hour {
			t.Fatalf("%s: duration %q, want about 168h", v, d.Duration)
		}
		if d.Scenario != "apiban/sip-blocklist" || d.Type != "ban" || d.Scope != "Ip" {
			t.Fatalf("%s: %+v", v, d)
		}
	}
	for _, field := range []string{"fetched=605", "invalid=1", "allowlisted=4", "pushed=601", "requests=3"} {
		if !strings.Contains(r.Stderr, field) {
			t.Errorf("sync log lacks %q:\n%s", field, r.Stderr)
		}
	}

	e.sim.ResetStats()
	more := apibansim.PublicIPv4s(10, 2)
	e.sim.Add(more...)
	r = e.mustSync()
	e.assertExactly(append(want, more...))
	if got := e.sim.Requests(); got != 1 {
		t.Errorf("incremental sync used %d APIBAN requests, want 1", got)
	}
	if !strings.Contains(r.Stderr, "pushed=10 ") {
		t.Errorf("incremental sync log:\n%s", r.Stderr)
	}
}

func TestV1WithCredentialsFileAndLAPIAllowlist(t *testing.T) {
	e := newEnv(t, withV1AndCredentialsFile)
	e.lapi.Cscli(t, "allowlists", "create", "trunks", "-d", "SIP trunks")
	e.lapi.Cscli(t, "allowlists", "add", "trunks", "203.0.113.0/24")
	want := feed(e, 300, 3)
	e.sim.Add("203.0.113.40")
	r := e.mustSync()
	e.assertExactly(want)
	if !strings.Contains(r.Stderr, "203.0.113.40/32") || !strings.Contains(r.Stderr, "trunks") {
		t.Errorf("the LAPI-allowlisted address is not logged with its allowlist:\n%s", r.Stderr)
	}
}

func TestRestartAndLostStateFile(t *testing.T) {
	e := newEnv(t)
	want := feed(e, 260, 4)
	e.mustSync()
	cursor := e.savedState().Cursor
	if cursor == "" || cursor != e.sim.LastID() {
		t.Fatalf("cursor %q after a full pull, want the last ID %q", cursor, e.sim.LastID())
	}

	// restart: nothing new, nothing pushed
	r := e.mustSync()
	if !strings.Contains(r.Stderr, "pushed=0 ") {
		t.Fatalf("a sync with nothing new pushed something:\n%s", r.Stderr)
	}

	// lost state file: rebuilt from LAPI, only the new address pushed
	if err := os.Remove(e.state); err != nil {
		t.Fatal(err)
	}
	e.sim.Add("192.0.2.77")
	r = e.mustSync()
	if !strings.Contains(r.Stderr, "pushed=1 ") || !strings.Contains(r.Stderr, "already_active=261") {
		t.Fatalf("after losing the state file:\n%s", r.Stderr)
	}
	e.assertExactly(append(want, "192.0.2.77"))
}

func TestLAPIDownKeepsCursorAndLosesNothing(t *testing.T) {
	e := newEnv(t)
	want := feed(e, 100, 5)
	e.mustSync()
	before := e.savedState().Cursor

	e.lapi.Stop()
	more := apibansim.PublicIPv4s(30, 6)
	e.sim.Add(more...)
	r := e.run("--once")
	if r.Code == 0 {
		t.Fatalf("--once succeeded while LAPI was down:\n%s", r.Stderr)
	}
	if !strings.Contains(r.Stderr, "sync failed") {
		t.Errorf("no clear failure in the log:\n%s", r.Stderr)
	}
	if got := e.savedState().Cursor; got != before {
		t.Fatalf("cursor moved from %q to %q while LAPI was down", before, got)
	}

	e.lapi.Restart(t)
	e.mustSync()
	e.assertExactly(append(want, more...))
}

func TestDryRunWritesNothing(t *testing.T) {
	e := newEnv(t)
	// 192.0.2.0/24 may hold this host's own address (never banned): use
	// another documentation range.
	e.sim.Add("203.0.113.1", "203.0.113.2", "10.0.0.1")
	r := e.run("--dry-run")
	if r.Code != 0 {
		t.Fatalf("dry run exited %d:\n%s", r.Code, r.Stderr)
	}
	if r.Stdout != "203.0.113.1/32\n203.0.113.2/32\n" {
		t.Fatalf("dry run printed %q", r.Stdout)
	}
	if len(e.decisions()) != 0 {
		t.Fatal("dry run pushed decisions")
	}
	if _, err := os.Stat(e.state); !os.IsNotExist(err) {
		t.Fatalf("dry run wrote the state file (%v)", err)
	}
}

func TestBadKeyFailsClearlyWithoutLeakingIt(t *testing.T) {
	e := newEnv(t)
	e.sim.Add("192.0.2.1")
	// the simulator knows apiKey; this one is refused (and must not leak)
	e.setConfig(func(c *bridgetest.Config) { c.APIBAN.APIKey = "Other-" + apiKey[:6] + "zz" })
	r := e.run("--once")
	if r.Code == 0 || !strings.Contains(strings.ToLower(r.Stderr), "unauthorized") {
		t.Fatalf("exit %d, want a clear unauthorized error:\n%s", r.Code, r.Stderr)
	}
	if strings.Contains(r.Stderr, "Other-") {
		t.Fatalf("the refused key leaked:\n%s", r.Stderr)
	}
}

func TestConfigTestFlagAndVersion(t *testing.T) {
	e := newEnv(t)
	if r := e.run("-t"); r.Code != 0 || !strings.Contains(r.Stdout, "configuration OK") {
		t.Fatalf("-t on a good config: %+v", r)
	}
	os.WriteFile(e.config, []byte("apiban:\n  api_verison: v2\n"), 0o600)
	r := e.run("-t")
	if r.Code == 0 || !strings.Contains(r.Stderr, `unknown key "apiban.api_verison"`) {
		t.Fatalf("-t on a bad config: %+v", r)
	}
	if r := e.run("-V"); r.Code != 0 || !strings.HasPrefix(r.Stdout, "crowdsec-apiban-bridge ") {
		t.Fatalf("-V: %+v", r)
	}
}

// The daemon syncs on its own, picks up new entries on the next poll and
// stops cleanly on SIGTERM with a state file that parses.
func TestDaemonSyncsAndStopsOnSIGTERM(t *testing.T) {
	e := newEnv(t)
	e.setConfig(func(c *bridgetest.Config) { c.APIBAN.PollInterval = 10 * time.Second })
	want := feed(e, 50, 7)
	d := e.daemon()
	bridgetest.Eventually(t, 30*time.Second, "every decision in LAPI", func() bool { return len(e.decisions()) == len(want) })
	more := apibansim.PublicIPv4s(5, 8)
	e.sim.Add(more...)
	want = append(want, more...)
	bridgetest.Eventually(t, 30*time.Second, "every decision in LAPI", func() bool { return len(e.decisions()) == len(want) })
	e.assertExactly(want)

	out := d.Stop()
	bridgetest.AssertNoSecrets(t, out, apiKey, password)
	if !strings.Contains(out, "stopped") {
		t.Errorf("no clean stop logged:\n%s", out)
	}
	if st := e.savedState(); st.Active.Len() != len(want) {
		t.Fatalf("state holds %d active, want %d", st.Active.Len(), len(want))
	}
}
