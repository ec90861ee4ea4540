package faults

import (
	"strings"
	"testing"
	"time"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/apibansim"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/bridgetest"
)

// Every kind of APIBAN misbehaviour, in bursts longer than the client's
// retries, while the daemon runs: it must keep running, name each fault
// in its log, and end with LAPI holding exactly the list.
func TestAPIBANFaultsDaemonKeepsRunningAndConverges(t *testing.T) {
	r := newRig(t, rigOpts{})
	r.feed(600, 11)
	// Two of a kind are absorbed by the client's retries (max_retries 2);
	// three defeat them and fail that sync, which the daemon retries.
	fatal := map[apibansim.Fault]bool{apibansim.Fault503: true, apibansim.FaultReset: true,
		apibansim.FaultHang: true, apibansim.FaultOversized: true, apibansim.Fault429: true}
	var faults []apibansim.Fault
	for _, f := range apibansim.Faults() {
		faults = append(faults, f, f)
		if fatal[f] {
			faults = append(faults, f)
		}
	}
	r.sim.FailNext(faults...)
	d := r.start()
	bridgetest.Eventually(t, 4*time.Minute, "every fault served", func() bool {
		d.Running()
		return r.sim.PendingFaults() == 0
	})
	// New entries after the storm still arrive.
	r.feed(40, 12)
	r.waitConverged(d, 90*time.Second)
	out := stop(t, d)
	for _, want := range []string{"status 500", "status 502", "status 503", "status 429",
		"timed out after 2s", "sync failed", "sync finished"} {
		if !strings.Contains(out, want) {
			t.Errorf("the log never says %q", want)
		}
	}
	if st := r.savedState(); st.Cursor != r.sim.LastID() {
		t.Errorf("cursor %q, want the last ID %q", st.Cursor, r.sim.LastID())
	}
	if t.Failed() {
		t.Log(out)
	}
}

// A 429 storm longer than the retries: the sync gives up for now, the
// daemon waits and finishes later without losing its place.
func TestAPIBAN429StormKeepsTheCursor(t *testing.T) {
	r := newRig(t, rigOpts{})
	r.feed(700, 13)
	if code, out := r.once(); code != 0 {
		t.Fatalf("first sync failed:\n%s", out)
	}
	cursor := r.savedState().Cursor
	r.feed(300, 14)
	r.sim.FailNext(apibansim.Fault429, apibansim.Fault429, apibansim.Fault429, apibansim.Fault429)
	code, out := r.once()
	if code == 0 || !strings.Contains(out, "429") {
		t.Fatalf("a 429 storm must fail the sync clearly (exit %d):\n%s", code, out)
	}
	if got := r.savedState().Cursor; got != cursor {
		t.Fatalf("cursor moved from %q to %q during a 429 storm", cursor, got)
	}
	d := r.start()
	r.waitConverged(d, time.Minute)
	stop(t, d)
}
