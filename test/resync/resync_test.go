package resynctest

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/bridgetest"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/lapitest"
)

// Bouncer keys: secrets, one per reader (readers sharing a key steal each
// other's deltas).
const (
	keyResyncing = "Resync-bouncer-key-1a2b3c4d"
	keyStreaming = "Stream-bouncer-key-5e6f7a8b"
	keyMirror    = "Mirror-bouncer-key-9c0d1e2f"
)

// served is how the mirror lists a prefix: a bare address or a CIDR.
func served(ps []string) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		q := netip.MustParsePrefix(p)
		out[i] = p
		if q.IsSingleIP() {
			out[i] = q.Addr().String()
		}
	}
	return out
}

// LAPI's alert flush deletes the bridge's alert with its decisions and
// sends the stream no deleted event: a reader without the resync keeps
// enforcing them; the resyncing bouncer and the mirror drop them at the
// next full pull, and keep what LAPI still holds.
func TestResyncDropsWhatTheFlushDeleted(t *testing.T) {
	needLAPI(t)
	l := lapitest.StartFlushing(t, 20)
	l.AddMachine(t, machine, password)
	addBouncer(t, l, "resyncing", keyResyncing)
	addBouncer(t, l, "streaming", keyStreaming)
	addBouncer(t, l, "mirror", keyMirror)
	fixed := startBouncer(t, l, keyResyncing, resync)
	control := startBouncer(t, l, keyStreaming, 0)
	list, set, mlog := startMirror(t, l, keyMirror)

	pushed := []string{"198.51.100.7/32", "198.51.100.8/32", "203.0.113.0/25"}
	push(t, l, pushed...)
	bridgetest.Eventually(t, time.Minute, "every reader to hold the pushed decisions", func() bool {
		all, _ := lists(listed(t, list), served(pushed)...)
		return fixed.holds(pushed...) && control.holds(pushed...) && all
	})
	// 40 newer alerts push the bridge's past max_items: the flush
	// (about once a minute) deletes it with its decisions.
	for i := range 40 {
		l.Cscli(t, "decisions", "add", "-i", fmt.Sprintf("198.51.100.%d", 100+i), "-d", "1h")
	}
	bridgetest.Eventually(t, 3*time.Minute, "LAPI's flush to delete the pushed decisions", func() bool {
		return len(l.Decisions(t, "apiban")) == 0
	})
	var kept []string
	for _, d := range l.Decisions(t, "cscli") {
		kept = append(kept, d.Value+"/32")
	}
	if len(kept) == 0 {
		t.Fatal("the flush left no cscli decision to check the resync keeps")
	}
	bridgetest.Eventually(t, time.Minute, "the resyncing readers to drop what LAPI deleted", func() bool {
		_, none := lists(listed(t, list), served(pushed)...)
		all, _ := lists(listed(t, list), served(kept)...)
		return fixed.holdsNone(pushed...) && none && all && fixed.holds(kept...)
	})
	// The stream alone never learns: what LAPI deleted stays enforced.
	if !control.holds(pushed...) {
		t.Fatal("a bouncer without resync dropped the flushed decisions: LAPI now reports the flush, and this test no longer shows the need")
	}
	if s := fixed.b.Stats(); s.Resyncs == 0 || s.ResyncRemoved < len(pushed) {
		t.Errorf("bouncer stats %+v: want resyncs counted with at least %d removed", s, len(pushed))
	}
	if r := set.Resyncs(); r.Count == 0 || r.Removed < len(pushed) {
		t.Errorf("mirror resyncs %+v: want at least %d removed", r, len(pushed))
	}
	if !strings.Contains(fixed.log.String(), "resync with LAPI's full list changed the enforced set") {
		t.Errorf("the bouncer did not log the resync's change")
	}
	if !strings.Contains(mlog.String(), "resync with LAPI's full list changed the served set") {
		t.Errorf("the mirror did not log the resync's change")
	}
}

// LAPI restarts on a new, empty database: the stream's deltas say
// nothing of the old decisions. The resyncing readers hold exactly what
// the new database holds after the next full pull.
func TestResyncAfterNewDatabase(t *testing.T) {
	needLAPI(t)
	l := lapitest.Start(t)
	l.AddMachine(t, machine, password)
	keys := map[string]string{"resyncing": keyResyncing, "streaming": keyStreaming, "mirror": keyMirror}
	for name, key := range keys {
		addBouncer(t, l, name, key)
	}
	fixed := startBouncer(t, l, keyResyncing, resync)
	control := startBouncer(t, l, keyStreaming, 0)
	list, _, _ := startMirror(t, l, keyMirror)

	// The new database numbers its decisions from 1 again; a reader
	// without resync replaces a decision whose ID comes back with
	// another value. The filler takes the IDs the new database reuses,
	// so that old's stay unique to the first database.
	push(t, l, "198.51.100.50/32", "198.51.100.51/32", "198.51.100.52/32")
	old := []string{"198.51.100.20/32", "203.0.113.128/26"}
	push(t, l, old...)
	bridgetest.Eventually(t, time.Minute, "every reader to hold the first database's decisions", func() bool {
		all, _ := lists(listed(t, list), served(old)...)
		return fixed.holds(old...) && control.holds(old...) && all
	})

	l.NewDatabase(t)
	l.AddMachine(t, machine, password)
	for name, key := range keys {
		addBouncer(t, l, name, key)
	}
	fresh := []string{"198.51.100.30/32", "198.51.100.31/32", "2001:db8::31/128"}
	push(t, l, fresh...)
	bridgetest.Eventually(t, 2*time.Minute, "the resyncing readers to hold exactly the new database's decisions", func() bool {
		m := listed(t, list)
		all, _ := lists(m, served(fresh)...)
		_, none := lists(m, served(old)...)
		return fixed.holds(fresh...) && fixed.holdsNone(old...) && all && none
	})
	if !control.holds(old...) {
		t.Fatal("a bouncer without resync dropped the old database's decisions: this test no longer shows the need")
	}
}
