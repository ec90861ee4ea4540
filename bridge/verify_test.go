package bridge

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bridge/allowlist"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bridge/lapi"
)

// A first sync of 2,600 addresses leaves three alerts (IDs 1, 2, 3) of
// 1,000, 1,000 and 600 decisions.
func syncedRig(t *testing.T) (*rig, *Engine) {
	t.Helper()
	r := newRig(t)
	r.feed.add(2600)
	e := r.engine()
	r.sync(t, e, false)
	if len(r.lapi.alerts) != 3 {
		t.Fatalf("%d alerts after the first sync, want 3", len(r.lapi.alerts))
	}
	r.now = r.now.Add(5 * time.Minute)
	return r, e
}

func TestNothingLostCostsOneCheckAndNoReadBack(t *testing.T) {
	r, e := syncedRig(t)
	for i := range 4 {
		edges, reads := r.lapi.edges, r.lapi.reads
		rep := r.sync(t, e, false)
		if r.lapi.edges-edges != 1 || r.lapi.reads != reads || rep.ReadBack != "" || rep.Repaired != 0 {
			t.Fatalf("sync %d: %d checks, %d read-backs (%q), %d repaired; want 1, 0", i, r.lapi.edges-edges, r.lapi.reads-reads, rep.ReadBack, rep.Repaired)
		}
	}
}

func TestFlushedOldestAlertIsRepairedInTheNextSync(t *testing.T) {
	r, e := syncedRig(t)
	lost := append([]netip.Prefix(nil), r.lapi.alerts[1]...)
	r.lapi.dropAlert(1) // LAPI's flush takes the oldest alert
	rep := r.sync(t, e, false)
	if rep.Repaired != len(lost) || rep.ReadBack == "" {
		t.Fatalf("repaired %d (read back: %q), want %d", rep.Repaired, rep.ReadBack, len(lost))
	}
	for _, p := range lost {
		if _, ok := r.lapi.until[p]; !ok {
			t.Fatalf("%s not pushed again", p)
		}
	}
	if d := r.lapi.duplicates(); len(d) != 0 {
		t.Fatalf("%d duplicates: a repair pushed what LAPI still held", len(d))
	}
	st := r.savedState(t)
	if st.LastRepaired != len(lost) || !st.LastRepair.Equal(r.now) {
		t.Fatalf("state records repair %d at %s", st.LastRepaired, st.LastRepair)
	}
	if _, ok := st.Alerts[1]; ok {
		t.Fatal("the lost alert is still in the state")
	}
}

func TestLostNewestAlertIsRepairedWithinTwoSyncs(t *testing.T) {
	r, e := syncedRig(t)
	lost := len(r.lapi.alerts[3])
	r.lapi.dropAlert(3) // a database restored from before the last push
	repaired := 0
	for range 2 {
		repaired += r.sync(t, e, false).Repaired
	}
	if repaired != lost {
		t.Fatalf("repaired %d, want %d", repaired, lost)
	}
	if len(r.lapi.until) != 2600 {
		t.Fatalf("LAPI holds %d, want 2600", len(r.lapi.until))
	}
}

func TestEmptiedLAPIIsWholeAfterOneSync(t *testing.T) {
	for _, newestFirst := range []bool{false, true} {
		r, e := syncedRig(t)
		e.checkNewest = newestFirst
		r.lapi.reset()
		rep := r.sync(t, e, false)
		if rep.Repaired != 2600 || len(r.lapi.until) != 2600 {
			t.Fatalf("check newest %v: repaired %d, LAPI holds %d; want 2600", newestFirst, rep.Repaired, len(r.lapi.until))
		}
		// The repaired alerts are the state's now: the next check agrees.
		if rep := r.sync(t, e, false); rep.ReadBack != "" {
			t.Fatalf("after the repair the check still reads back: %q", rep.ReadBack)
		}
	}
}

func TestRepairPushesWhatWasLeftOfEachDecision(t *testing.T) {
	r, e := syncedRig(t)
	r.now = r.now.Add(100 * time.Hour)
	r.lapi.reset()
	r.sync(t, e, false)
	for p, until := range r.lapi.until {
		// Pushed at the start, 168h, so 68h5m are left (the rig pushes
		// from r.now with the duration the repair gave).
		if want := r.now.Add(68*time.Hour - 5*time.Minute); !until.Equal(want) {
			t.Fatalf("%s repaired until %s, want %s", p, until, want)
		}
	}
}

func TestDeletedDecisionsAreRepairedByAFullSync(t *testing.T) {
	r, e := syncedRig(t)
	deleted := r.lapi.alerts[2][:40]
	for _, p := range deleted {
		delete(r.lapi.until, p) // cscli decisions delete --ip
	}
	if rep := r.sync(t, e, false); rep.Repaired != 0 {
		t.Fatalf("the cheap check cannot see deletes inside a live alert, yet repaired %d", rep.Repaired)
	}
	rep := r.sync(t, e, true)
	if rep.Repaired != 40 || rep.ReadBack != "full sync" {
		t.Fatalf("full sync repaired %d (%q), want 40", rep.Repaired, rep.ReadBack)
	}
	if d := r.lapi.duplicates(); len(d) != len(deleted) {
		t.Fatalf("%d rows pushed twice, want only the %d deleted ones", len(d), len(deleted))
	}
}

func TestAllowlistedAddressIsNotRepaired(t *testing.T) {
	r, e := syncedRig(t)
	kept := r.lapi.alerts[1][0]
	r.lapi.allow = []allowlist.Entry{{Prefix: kept, Source: "allowlist trunks"}}
	r.lapi.dropAlert(1)
	rep := r.sync(t, e, false)
	if rep.Repaired != 999 {
		t.Fatalf("repaired %d, want 999 (the allowlisted one stays out)", rep.Repaired)
	}
	if _, ok := r.lapi.until[kept]; ok {
		t.Fatal("an allowlisted address was pushed again")
	}
}

func TestStateFromBeforeAlertIDsIsReadBackOnce(t *testing.T) {
	r, e := syncedRig(t)
	e.st.Alerts = map[int64]time.Time{}
	rep := r.sync(t, e, false)
	if rep.ReadBack == "" || rep.Repaired != 0 {
		t.Fatalf("read back %q, repaired %d; want a read-back and nothing repaired", rep.ReadBack, rep.Repaired)
	}
	if len(e.st.Alerts) != 3 {
		t.Fatalf("the read-back learned %d alerts, want 3", len(e.st.Alerts))
	}
}

func TestPlantedEndsAreNotBelieved(t *testing.T) {
	r, _ := syncedRig(t)
	st := r.savedState(t)
	planted := netip.MustParsePrefix("203.0.113.77/32")
	st.Active.Set(planted, time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC))
	if err := st.Save(r.opts.StatePath); err != nil {
		t.Fatal(err)
	}
	r.feed.entries = append(r.feed.entries, planted)
	e := r.engine()
	if err := e.loadState(); err != nil {
		t.Fatal(err)
	}
	if got, want := e.st.Active.Until(planted), r.now.Add(r.opts.Duration); !got.Equal(want) {
		t.Fatalf("planted end believed as %s, want at most %s", got, want)
	}
	// A full sync reads LAPI back first: LAPI does not hold the planted
	// entry, so it is pushed (as a repair: the state said it should be).
	rep := r.sync(t, e, true)
	if _, ok := r.lapi.until[planted]; !ok || rep.Repaired != 1 {
		t.Fatalf("a full sync did not push the planted entry: %+v", rep)
	}
}

func TestAnotherWritersNewerAlertIsLearnedOnce(t *testing.T) {
	r, e := syncedRig(t)
	// Another bridge of the same origin (or a push whose answer was lost)
	// adds an alert the state does not know.
	if _, err := r.lapi.Push(context.Background(), []lapi.Decision{{Prefix: netip.MustParsePrefix("203.0.113.9/32"), Duration: time.Hour}}, r.now); err != nil {
		t.Fatal(err)
	}
	reads := 0
	for range 4 {
		rep := r.sync(t, e, false)
		if rep.Repaired != 0 {
			t.Fatalf("repaired %d: nothing was lost", rep.Repaired)
		}
		if rep.ReadBack != "" {
			reads++
		}
	}
	if reads != 1 {
		t.Fatalf("%d read-backs in 4 syncs, want exactly 1 (to learn the new alert)", reads)
	}
}

// A check LAPI cannot answer in time does not stop new bans: the sync
// goes on without it, and the next one checks again.
func TestAFailedCheckDoesNotStopTheSync(t *testing.T) {
	r, e := syncedRig(t)
	r.lapi.edgeErr = errors.New("context deadline exceeded")
	r.feed.add(10)
	rep := r.sync(t, e, false)
	if rep.Pushed != 10 || rep.ReadBack != "" {
		t.Fatalf("report %+v: want the 10 new pushed, no read-back", rep)
	}
	r.lapi.edgeErr = nil
	edges := r.lapi.edges
	r.sync(t, e, false)
	if r.lapi.edges != edges+1 {
		t.Fatal("the next sync did not check again")
	}
}
