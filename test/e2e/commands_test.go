package e2e

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bridge/state"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/bridgetest"
)

// wantLines fails unless every pattern matches a line of out.
func wantLines(t *testing.T, what, out string, patterns ...string) {
	t.Helper()
	for _, p := range patterns {
		if !regexp.MustCompile(`(?m)` + p).MatchString(out) {
			t.Errorf("%s: no line matches %q in:\n%s", what, p, out)
		}
	}
}

// status, check, flush and sync --full against a real LAPI.
func TestStatusCheckFlushAndSyncFull(t *testing.T) {
	e := newEnv(t)
	want := feed(e, 40, 21)
	e.mustSync()
	listed := want[0]
	e.lapi.Cscli(t, "decisions", "add", "-i", listed, "-d", "1h", "-R", "manual")

	r := e.run("status")
	if r.Code != 0 {
		t.Fatalf("status exited %d: %s%s", r.Code, r.Stdout, r.Stderr)
	}
	wantLines(t, "status", r.Stdout,
		`^cursor\s+`+e.sim.LastID()+`$`,
		fmt.Sprintf(`^active \(state\)\s+%d decisions in 1 alerts$`, len(want)),
		`^last repair\s+never`,
		`^last full sync\s+\d{4}-.*ago\)$`,
		`^daemon\s+not running \(nothing holds .*state\.json\.lock\)$`,
		fmt.Sprintf(`^LAPI\s+%s reachable: %d active decisions of origin apiban in 1 alerts$`, regexp.QuoteMeta(e.lapi.URL), len(want)),
		`^bouncer sets\s+n/a \(bouncer\.enabled is false\)$`,
	)

	r = e.run("check", listed)
	if r.Code != 0 {
		t.Fatalf("check exited %d: %s%s", r.Code, r.Stdout, r.Stderr)
	}
	wantLines(t, "check listed", r.Stdout,
		`^APIBAN\s+listed \(set sip\)$`,
		`^allowlisted\s+no$`,
		`"ban" by origin "apiban" \("apiban/sip-blocklist", Ip "`+regexp.QuoteMeta(listed)+`", 16[78]h`,
		`"ban" by origin "cscli" \("manual", Ip "`+regexp.QuoteMeta(listed),
		`^bridge state\s+pushed, decision until `,
		`^kernel set\s+n/a`,
	)
	r = e.run("check", "198.51.100.20")
	wantLines(t, "check allowlisted", r.Stdout,
		`^APIBAN\s+listed`,
		`^allowlisted\s+yes: config \(198\.51\.100\.0/24\): never pushed, nor pushed again by a repair$`,
		`^LAPI decisions\s+none active$`,
		`^bridge state\s+not pushed by this bridge$`,
	)
	r = e.run("check", "10.1.2.3")
	wantLines(t, "check never banned", r.Stdout, `^never banned\s+yes: \S+ \(10\.0\.0\.0/8\): neither pushed`)
	r = e.run("check", "203.0.113.77")
	wantLines(t, "check unlisted", r.Stdout, `^APIBAN\s+not listed$`, `^LAPI decisions\s+none active$`)
	if r := e.run("check", "not-an-ip"); r.Code == 0 {
		t.Errorf("check of a non-address succeeded: %s", r.Stdout)
	}

	r = e.run("flush")
	if r.Code != 0 {
		t.Fatalf("flush exited %d: %s%s", r.Code, r.Stdout, r.Stderr)
	}
	wantLines(t, "flush", r.Stdout, fmt.Sprintf(`^LAPI\s+expired %d decisions of origin apiban$`, len(want)))
	if n := len(e.decisions()); n != 0 {
		t.Fatalf("%d apiban decisions left after flush", n)
	}
	if n := len(e.lapi.Decisions(t, "cscli")); n != 1 {
		t.Fatalf("flush touched other origins: %d cscli decisions left, want 1", n)
	}
	if st := e.savedState(); st.Cursor != "" || st.Active.Len() != 0 {
		t.Fatalf("state after flush: cursor %q, %d active", st.Cursor, st.Active.Len())
	}

	r = e.run("sync", "--full")
	if r.Code != 0 {
		t.Fatalf("sync --full exited %d: %s", r.Code, r.Stderr)
	}
	e.assertExactly(want)

	e.lapi.Stop()
	r = e.run("status")
	if r.Code == 0 {
		t.Fatalf("status with LAPI down exited 0:\n%s", r.Stdout)
	}
	wantLines(t, "status, LAPI down", r.Stdout, `^LAPI\s+.* unreachable: `)
	if r := e.run("bogus"); r.Code != 2 || !strings.Contains(r.Stderr, `unexpected argument "bogus"`) {
		t.Errorf("unknown command: %+v", r)
	}
}

// With the daemon running, status reports it from the state file's lock
// and its health from /healthz, and flush refuses to pull decisions from
// under it.
func TestStatusSeesDaemonAndFlushRefuses(t *testing.T) {
	port := freePort(t)
	e := newEnv(t, withObservability(port))
	want := feed(e, 20, 22)
	e.daemon() // killed, and its log shown on failure, at test end
	bridgetest.Eventually(t, 30*time.Second, "/healthz", func() bool {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", port))
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == http.StatusOK
	})
	r := e.run("status")
	wantLines(t, "status", r.Stdout, `^daemon\s+running: PID \d+ holds .*state\.json\.lock$`,
		`^metrics port\s+127\.0\.0\.1:\d+ is the daemon's \(PID \d+ holds its listening socket\)$`,
		`^health\s+"ok" \(HTTP 200\)$`, `^last success\s+\d{4}-`, `^next run\s+about `)
	r = e.run("flush")
	if r.Code == 0 || !strings.Contains(r.Stdout, "refused: state file in use: "+e.state+".lock is held by PID") {
		t.Fatalf("flush with the daemon running: %+v", r)
	}
	e.assertExactly(want)
	if _, err := os.Stat(e.state); err != nil {
		t.Fatal(err)
	}
	if _, err := state.Load(e.state); err != nil {
		t.Fatal(err)
	}
}

// Another process that takes the metrics port first and answers /healthz
// itself, naming the daemon's PID: status learns from the kernel that the
// socket is not the daemon's, names that process, and asks it nothing
// (nothing of its answer reaches the terminal).
func TestStatusIsNotFooledByAPortSquatter(t *testing.T) {
	port := freePort(t)
	var asked atomic.Int32
	var statePath string
	squatter := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		pid, _, _ := state.Holder(statePath) // the daemon's, as a clever squatter would
		_, _ = fmt.Fprintf(w, `{"status":"ok\u001b[2J\u001b]0;owned\u0007","pid":%s,"last_error":"\u001b[31mred"}`, pid)
	})}
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = squatter.Serve(ln) }()
	defer squatter.Close()
	e := newEnv(t, withObservability(port))
	statePath = e.state
	feed(e, 20, 27)
	d := e.daemon()
	bridgetest.Eventually(t, 30*time.Second, "a finished sync in the log file", func() bool {
		return strings.Contains(readFile(t, e.dir+"/crowdsec-apiban-bridge.log"), "sync finished")
	})
	out := e.run("status").Stdout
	wantLines(t, "status", out, `^daemon\s+running: PID \d+ holds`,
		fmt.Sprintf(`^health\s+unknown: another process \(PID %d, "[^"]*"\) listens on 127\.0\.0\.1:%d, not the daemon \(PID \d+\)$`, os.Getpid(), port))
	if n := asked.Load(); n != 0 {
		t.Errorf("status asked the squatter %d times", n)
	}
	if strings.ContainsAny(out, "\x1b\x07") {
		t.Fatalf("status printed control characters from the network:\n%q", out)
	}
	d.Stop()
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, _ := os.ReadFile(path)
	return string(b)
}
