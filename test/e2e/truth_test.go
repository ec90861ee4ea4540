package e2e

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/apibansim"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/bridgetest"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/lapitest"
)

// LAPI is the truth and the state file a cache of it (docs/reliability.md).
// These tests make a real LAPI lose the bridge's decisions in each way
// LAPI loses them, and check that one sync puts them back.

// withFlushingLAPI runs the bridge against a LAPI whose alert flush keeps
// only the newest 20 alerts.
func withFlushingLAPI(e *env, c *bridgetest.Config) {
	e.lapi.Stop()
	e.lapi = lapitest.StartFlushing(e.t, 20)
	e.lapi.AddMachine(e.t, "crowdsec-apiban-bridge", password)
	c.CrowdSec.LAPIURL = e.lapi.URL
}

func TestAlertFlushIsRepairedInOneSync(t *testing.T) {
	e := newEnv(t, withFlushingLAPI)
	want := apibansim.PublicIPv4s(2500, 21)
	e.sim.Add(want...)
	e.mustSync()
	e.assertExactly(want)
	// 40 newer alerts of another origin push the bridge's three alerts
	// past max_items: LAPI's flush (about once a minute) deletes them
	// with all their decisions.
	for i := range 40 {
		e.lapi.Cscli(t, "decisions", "add", "-i", fmt.Sprintf("203.0.113.%d", i+1), "-d", "1h")
	}
	bridgetest.Eventually(t, 3*time.Minute, "LAPI's flush to take every apiban decision", func() bool { return len(e.lapi.Decisions(t, "apiban")) == 0 })

	r := e.mustSync()
	e.assertExactly(want)
	if !strings.Contains(r.Stderr, "repaired=2500") {
		t.Fatalf("the sync after the flush does not report repaired=2500:\n%s", r.Stderr)
	}
	if st := e.savedState(); st.LastRepaired != 2500 || st.LastRepair.IsZero() {
		t.Fatalf("state records the last repair as %d at %s", st.LastRepaired, st.LastRepair)
	}
	status := e.run("status")
	if !strings.Contains(status.Stdout, "2500 decisions LAPI had lost pushed again") {
		t.Fatalf("status does not show the repair:\n%s", status.Stdout)
	}
}

func TestFreshDatabaseIsRepairedInOneSync(t *testing.T) {
	e := newEnv(t)
	want := feed(e, 1200, 22)
	e.mustSync()
	e.lapi.NewDatabase(t) // a reinstall, or a move to another database
	e.lapi.AddMachine(t, "crowdsec-apiban-bridge", password)
	r := e.mustSync()
	e.assertExactly(want)
	if !strings.Contains(r.Stderr, fmt.Sprintf("repaired=%d", len(want))) {
		t.Fatalf("the sync after the new database does not report repaired=%d:\n%s", len(want), r.Stderr)
	}
	// Repaired decisions keep what was left of them, not a fresh week.
	for v, d := range e.decisions() {
		if left, err := time.ParseDuration(d.Duration); err != nil || left > 168*time.Hour {
			t.Fatalf("%s repaired with duration %q", v, d.Duration)
		}
	}
	// The next sync finds nothing lost: no read-back, nothing repaired.
	r = e.mustSync()
	if !strings.Contains(r.Stderr, "repaired=0") || strings.Contains(r.Stderr, "read this bridge's decisions back") {
		t.Fatalf("a sync after the repair read LAPI back again:\n%s", r.Stderr)
	}
}

// The operator-delete contract (docs/operations.md): a `cscli decisions
// delete` of an APIBAN address is undone by the next full sync (a deleted
// decision inside a live alert is invisible to the per-sync check); an
// allowlist is how to keep an address out, and check says which applies.
func TestDeletedDecisionsComeBackUnlessAllowlisted(t *testing.T) {
	e := newEnv(t)
	want := apibansim.PublicIPv4s(300, 23)
	e.sim.Add(want...)
	e.mustSync()
	for _, ip := range want[:40] {
		e.lapi.Cscli(t, "decisions", "delete", "--ip", ip)
	}
	// allowlist.cidrs rather than `cscli allowlists`, which LAPI before
	// 1.6.6 lacks: the contract is the same for both (check names each).
	kept := want[0]
	e.setConfig(func(c *bridgetest.Config) { c.Allowlist.CIDRs = append(c.Allowlist.CIDRs, kept) })
	deleted := want[1]
	if out := e.run("check", deleted).Stdout; !strings.Contains(out, "LAPI no longer holds it") {
		t.Fatalf("check of a deleted address:\n%s", out)
	}
	r := e.mustSync("--full")
	e.assertExactly(want[1:])
	if !strings.Contains(r.Stderr, "repaired=39") {
		t.Fatalf("the full sync does not report repaired=39:\n%s", r.Stderr)
	}
	if out := e.run("check", kept).Stdout; !strings.Contains(out, "never pushed, nor pushed again by a repair") {
		t.Fatalf("check of the allowlisted address:\n%s", out)
	}
}

// feedGate stands in front of the APIBAN simulator and holds every
// request until it is opened, telling arrived of each.
type feedGate struct {
	arrived chan struct{}
	opened  chan struct{}
	open    func()
}

func newFeedGate(t *testing.T, target string) (*feedGate, string) {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	g := &feedGate{arrived: make(chan struct{}, 16), opened: make(chan struct{})}
	g.open = sync.OnceFunc(func() { close(g.opened) })
	proxy := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case g.arrived <- struct{}{}:
		default:
		}
		select {
		case <-g.opened:
			proxy.ServeHTTP(w, r)
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { g.open(); srv.Close() })
	return g, srv.URL
}

// Two syncs started together on one state file cannot both run. APIBAN
// holds every request until one of the two has ended, so whichever took
// the lock is still syncing while the other starts: exactly one refuses,
// naming the lock and the PID, before it asks APIBAN anything; the other
// syncs; LAPI holds each address once. Were the lock broken, both would
// reach APIBAN before either ended.
func TestOneWriterPerStateFile(t *testing.T) {
	var gate *feedGate
	e := newEnv(t, func(e *env, c *bridgetest.Config) {
		gate, c.APIBAN.URL = newFeedGate(t, e.sim.URL())
		c.APIBAN.Timeout = 2 * time.Minute // the held request outlasts the wait
	})
	want := apibansim.PublicIPv4s(3000, 24)
	e.sim.Add(want...)
	results := make(chan bridgetest.Result, 2)
	for range 2 {
		go func() { results <- e.run("--once") }()
	}
	var ended []bridgetest.Result
	for arrived := 0; len(ended) == 0; {
		select {
		case r := <-results:
			ended = append(ended, r)
		case <-gate.arrived:
			if arrived++; arrived == 2 {
				gate.open()
				<-results
				<-results
				t.Fatal("both syncs reached APIBAN before either ended: both ran")
			}
		}
	}
	gate.open()
	ended = append(ended, <-results)
	ok, refused := 0, 0
	for _, r := range ended {
		switch {
		case r.Code == 0:
			ok++
		case strings.Contains(r.Stderr, "state file in use") && strings.Contains(r.Stderr, e.state+".lock is held by PID"):
			refused++
		default:
			t.Fatalf("exit %d:\n%s", r.Code, r.Stderr)
		}
	}
	if ok != 1 || refused != 1 || ended[0].Code == 0 {
		t.Fatalf("%d synced and %d refused (the first to end exited %d); want the first to refuse and the other to sync", ok, refused, ended[0].Code)
	}
	e.assertExactly(want) // fails on any address held twice

	d := e.daemon()
	bridgetest.Eventually(t, 30*time.Second, "a finished sync", func() bool { return strings.Contains(d.Log.String(), "sync finished") })
	r := e.run("--once")
	if r.Code == 0 || !strings.Contains(r.Stderr, e.state+".lock is held by PID") {
		t.Fatalf("--once beside the daemon: exit %d\n%s", r.Code, r.Stderr)
	}
	if r := e.run("flush"); r.Code == 0 || !strings.Contains(r.Stdout, "refused") {
		t.Fatalf("flush beside the daemon: exit %d\n%s", r.Code, r.Stdout)
	}
	if out := e.run("status").Stdout; !strings.Contains(out, "running: PID") {
		t.Fatalf("status does not see the daemon through the lock:\n%s", out)
	}
	d.Stop()
	if out := e.run("status").Stdout; !strings.Contains(out, "not running") {
		t.Fatalf("status after the daemon stopped:\n%s", out)
	}
}

// hungLAPI accepts connections and never answers.
func hungLAPI(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	return "http://" + ln.Addr().String() + "/"
}

func TestHungLAPIFailsTheSyncAndTheHealthCheck(t *testing.T) {
	port := freePort(t)
	e := newEnv(t, withObservability(port))
	e.setConfig(func(c *bridgetest.Config) {
		c.CrowdSec.LAPIURL = hungLAPI(t)
		c.CrowdSec.Timeout = 2 * time.Second
		c.APIBAN.PollInterval = 10 * time.Second
	})
	e.sim.Add(apibansim.PublicIPv4s(10, 25)...)
	start := time.Now()
	r := e.run("--once")
	if r.Code == 0 || !strings.Contains(r.Stderr, "deadline exceeded") {
		t.Fatalf("--once against a hung LAPI: exit %d\n%s", r.Code, r.Stderr)
	}
	// One call of crowdsec.timeout, and the bridge's start: never the
	// minute the harness would wait.
	if took := time.Since(start); took > 20*time.Second {
		t.Fatalf("--once took %s against a LAPI that never answers (timeout 2s)", took)
	}

	d := e.daemon()
	defer d.Stop()
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	bridgetest.Eventually(t, time.Minute, "/healthz", func() bool {
		resp, err := http.Get(base + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable
	})
}

// At log_level trace, nothing CrowdSec's client library prints shows the
// machine password or the JWT.
func TestTraceLevelLeaksNoSecret(t *testing.T) {
	e := newEnv(t)
	e.setConfig(func(c *bridgetest.Config) { c.LogLevel = "trace" })
	feed(e, 50, 26)
	r := e.mustSync() // e.run checks the output for the key and password
	if !strings.Contains(r.Stderr, "level=debug") {
		t.Fatalf("a trace-level run logged no debug line; is log_level applied?\n%s", r.Stderr)
	}
	for _, leak := range []string{"Authorization: Bearer", `"token":`, "auth-jwt", "req-jwt"} {
		if strings.Contains(r.Stderr, leak) {
			t.Fatalf("the trace-level log shows %q", leak)
		}
	}
}
