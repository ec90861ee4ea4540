package faults

import (
	"context"
	"io"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bridge"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bridge/lapi"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/source/apiban"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/apibansim"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/bridgetest"
)

// The daemon loop, wired in-process as cmd wires it and run against the
// real LAPI and the simulator, leaves no goroutine behind once its context
// ends, even when it is stopped in the middle of a sync. Idle keep-alive
// connections of net/http are not the bridge's goroutines and die with
// the process; they are closed before counting.
func TestNoGoroutineLeftAfterShutdown(t *testing.T) {
	r := newRig(t, rigOpts{})
	r.feed(2000, 71)
	r.sim.FailNext(apibansim.FaultHang) // a sync is in flight at cancel time
	log := logrus.New()
	log.SetOutput(io.Discard)
	before := ours()

	src, err := apiban.New(apiban.Config{BaseURL: r.sim.URL(), APIKey: apiKey, Version: "v2", Set: "sip",
		RateWindow: 2 * time.Minute, Timeout: 5 * time.Second, MaxRetries: 2, MaxPages: 400, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	lc, err := lapi.New(lapi.Options{URL: r.lapi.URL, Login: "crowdsec-apiban-bridge", Password: password,
		UserAgent: "crowdsec-apiban-bridge/test", Origin: origin, Scenario: "apiban/sip-blocklist", Type: "ban",
		Timeout: 30 * time.Second, BatchSize: 250, Message: "leak test"})
	if err != nil {
		t.Fatal(err)
	}
	e := bridge.New(src, lc, bridge.Options{StatePath: filepath.Join(r.dir, "leak-state.json"),
		Duration: 168 * time.Hour, RefreshBefore: 24 * time.Hour, BatchSize: 250, Log: log})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		bridge.RunEach(ctx, []*bridge.Engine{e}, bridge.Schedule{Interval: time.Minute, RetryMin: 100 * time.Millisecond}, nil)
	}()
	// Cancel while the first page hangs.
	bridgetest.Poll(30*time.Second, func() bool { return r.sim.PendingFaults() == 0 })
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("RunEach did not return after its context ended")
	}
	closeIdle()
	var left []string
	if bridgetest.Poll(5*time.Second, func() bool { // goroutines need a moment to unwind
		left = extra(before, ours())
		return len(left) == 0
	}) {
		return
	}
	t.Fatalf("%d goroutines left after shutdown:\n%s", len(left), strings.Join(left, "\n\n"))
}

// ours lists the stacks of goroutines running code of this module or of
// crowdsec's client, apart from the test's own.
func ours() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		mine := strings.Contains(g, "crowdsec-apiban-bridge/crowdsec-apiban-bridge/") ||
			strings.Contains(g, "crowdsecurity/")
		if mine && !strings.Contains(g, "testing.tRunner") && !strings.Contains(g, "test/apibansim") &&
			!strings.Contains(g, "test/lapitest") && !strings.Contains(g, "net/http.(*persistConn)") {
			out = append(out, g)
		}
	}
	return out
}

// extra is what runs now that did not before, matched by first frame.
func extra(before, now []string) []string {
	seen := map[string]int{}
	for _, g := range before {
		seen[frame(g)]++
	}
	var out []string
	for _, g := range now {
		if f := frame(g); seen[f] > 0 {
			seen[f]--
			continue
		}
		out = append(out, g)
	}
	return out
}

func frame(g string) string {
	lines := strings.SplitN(g, "\n", 3)
	if len(lines) < 2 {
		return g
	}
	return lines[1]
}
