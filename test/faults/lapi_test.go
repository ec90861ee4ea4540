package faults

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/bridgetest"
)

// LAPI is down when the daemon starts: it must keep running, say so, and
// catch up once LAPI is there.
func TestLAPIDownAtStart(t *testing.T) {
	r := newRig(t, rigOpts{})
	r.feed(400, 21)
	r.lapi.Stop()
	d := r.start()
	waitLog(t, d, "sync failed", 30*time.Second)
	d.Running()
	r.lapi.Restart(t)
	r.waitConverged(d, 90*time.Second)
	out := stop(t, d)
	if !strings.Contains(out, "connection refused") {
		t.Errorf("the log does not say LAPI refused the connection:\n%s", out)
	}
}

// LAPI restarts while the daemon runs: the JWT it held is no longer valid
// (crowdsec signs with a new secret at each start). The bridge must log in
// again by itself and push what came meanwhile.
func TestLAPIRestartInvalidatesTheJWT(t *testing.T) {
	r := newRig(t, rigOpts{})
	r.feed(300, 22)
	d := r.start()
	r.waitConverged(d, time.Minute)
	r.lapi.Stop()
	r.lapi.Restart(t)
	r.feed(50, 23)
	r.waitConverged(d, 90*time.Second)
	stop(t, d)
}

// LAPI answers 500 to pushes, and stores a push whose answer is then
// lost: the bridge retries the first and reads LAPI back for the second,
// and no address ends with two decisions.
func TestLAPI500AndLostAnswers(t *testing.T) {
	r := newRig(t, rigOpts{proxy: true})
	r.feed(600, 31) // three pages of 250, one push each
	r.proxy.next(answer500, loseAnswer, answer500, loseAnswer)
	d := r.start()
	r.waitConverged(d, 2*time.Minute)
	r.feed(260, 32)
	r.proxy.next(loseAnswer)
	r.waitConverged(d, 2*time.Minute)
	out := stop(t, d)
	if r.proxy.count(answer500) != 2 || r.proxy.count(loseAnswer) != 3 {
		t.Fatalf("faults served: 500 x%d, lost x%d", r.proxy.count(answer500), r.proxy.count(loseAnswer))
	}
	for _, want := range []string{"sync failed", "injected failure", "connection reset by peer", "read this bridge's decisions back from LAPI"} {
		if !strings.Contains(out, want) {
			t.Errorf("the log never says %q", want)
		}
	}
	if t.Failed() {
		t.Log(out)
	}
}

// LAPI goes away in the middle of a sync (after the first push of
// several): what was pushed stays recorded, the rest follows once LAPI is
// back, nothing twice.
func TestLAPIDownMidSync(t *testing.T) {
	r := newRig(t, rigOpts{proxy: true})
	r.feed(1000, 41)
	r.proxy.next(0, goDown) // first push goes through, the second finds LAPI gone
	d := r.start()
	waitLog(t, d, "sync failed", time.Minute)
	if !r.proxy.isDown() {
		t.Fatal("the sync failed before LAPI went down")
	}
	st := r.savedState()
	if st.Active.Len() != 250 {
		t.Fatalf("state after the first push holds %d active, want 250", st.Active.Len())
	}
	time.Sleep(3 * time.Second) // a retry or two against the dead LAPI
	d.Running()
	r.proxy.up()
	r.waitConverged(d, 2*time.Minute)
	stop(t, d)
}

// waitLog waits until the daemon's log holds s, the daemon alive
// throughout.
func waitLog(t *testing.T, d *bridgetest.Daemon, s string, limit time.Duration) {
	t.Helper()
	bridgetest.Eventually(t, limit, fmt.Sprintf("the log to say %q", s), func() bool {
		d.Running()
		return strings.Contains(d.Log.String(), s)
	})
}
