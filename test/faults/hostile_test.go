package faults

import (
	"strconv"
	"strings"
	"testing"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/apibansim"
)

// A hostile feed ends the sync with an error naming the value at fault;
// what earlier pages of that pass brought is in LAPI with their cursor
// saved, nothing of the bad page is, and once the feed behaves again the
// next sync goes on from that cursor.

// wantHostile runs --once, wants it to fail naming want, LAPI to hold
// exactly r.want, and the state file to keep cursor.
func (r *rig) wantHostile(want, cursor string) {
	r.t.Helper()
	code, out := r.once()
	if code == 0 || !strings.Contains(out, want) {
		r.t.Fatalf("exit %d; the sync must fail naming %q:\n%s", code, want, out)
	}
	r.waitConverged(nil, 0)
	if got := r.savedState().Cursor; got != cursor {
		r.t.Fatalf("saved cursor %q, want %q (the last good page)\n%s", got, cursor, out)
	}
}

// addWant adds values to what LAPI must hold.
func (r *rig) addWant(values ...string) {
	for _, v := range values {
		r.want[v] = true
	}
}

// recovers wants the next sync, with the feed behaving, to bring LAPI to
// the whole list and the cursor to its end.
func (r *rig) recovers() {
	r.t.Helper()
	if code, out := r.once(); code != 0 {
		r.t.Fatalf("the sync after the hostile feed failed (exit %d):\n%s", code, out)
	}
	r.waitConverged(nil, 0)
	if got := r.savedState().Cursor; got != r.sim.LastID() {
		r.t.Fatalf("cursor %q after recovery, want the feed's last ID %q", got, r.sim.LastID())
	}
}

// plus is the cursor n entries after id (the simulator's IDs are
// consecutive).
func plus(t *testing.T, id string, n int64) string {
	t.Helper()
	v, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return strconv.FormatInt(v+n, 10)
}

// A first sync whose pages carry IDs 1000, 2000, 1000: the third page is
// a cycle; the first two are in LAPI with cursor 2000 kept.
func TestHostileCyclingCursor(t *testing.T) {
	r := newRig(t, rigOpts{})
	r.feed(300, 91)
	r.sim.FailNext(apibansim.FaultCursorCycle, apibansim.FaultCursorCycle, apibansim.FaultCursorCycle)
	want := r.want
	r.want = map[string]bool{}
	r.addWant(apibansim.HostileEntries(0, 250)...)
	r.addWant(apibansim.HostileEntries(1, 250)...)
	r.wantHostile("page ID 1000 was already returned by page 1 of this pass (started at cursor 100): the feed cycles", "2000")
	if n := r.sim.Requests(); n != 3 {
		t.Fatalf("%d requests to APIBAN, want 3: the cycle must end the pass at once", n)
	}
	for v := range want {
		r.want[v] = true
	}
	r.recovers()
}

// A good page, then one whose ID is below it.
func TestHostileDecreasingCursor(t *testing.T) {
	goodPageThenHostile(t, 92, apibansim.FaultCursorBack, func(good string) string {
		return "page ID 3000 is lower than the requested cursor " + good + ": the feed went back"
	})
}

// A good page, then one of 251 entries.
func TestHostileOverlongPage(t *testing.T) {
	goodPageThenHostile(t, 95, apibansim.FaultOverlong, func(string) string {
		return "page of 251 entries, more than APIBAN's 250 per page: refused whole"
	})
}

// goodPageThenHostile syncs 300 addresses, lists 600 more, and serves one
// good page of them before the fault: the sync fails with the message
// want(good) and keeps the good page's cursor, LAPI holds the good page
// and nothing after it, and the next sync, with the feed well again,
// reaches the end.
func goodPageThenHostile(t *testing.T, seed uint64, fault apibansim.Fault, want func(good string) string) {
	t.Helper()
	r := newRig(t, rigOpts{})
	r.feed(300, seed)
	if code, out := r.once(); code != 0 {
		t.Fatalf("first sync:\n%s", out)
	}
	start := r.sim.LastID()
	r.feed(600, seed+1)
	good := plus(t, start, 250)
	more := apibansim.PublicIPv4s(600, seed+1)
	for _, ip := range more[250:] {
		delete(r.want, ip) // after the bad page: not yet
	}
	r.sim.FailNext(apibansim.NoFault, fault)
	r.wantHostile(want(good), good)
	for _, ip := range more {
		r.want[ip] = true
	}
	r.recovers()
}

// APIBAN answering 302: the bridge says so, does not follow it, keeps its
// cursor, and the key is in no log line (r.once checks); the plain
// http:// URL of the test is warned of.
func TestHostileRedirectNotFollowed(t *testing.T) {
	r := newRig(t, rigOpts{})
	r.feed(10, 97)
	if code, out := r.once(); code != 0 {
		t.Fatalf("first sync:\n%s", out)
	}
	cursor := r.savedState().Cursor
	before := r.want
	r.want = map[string]bool{}
	for v := range before {
		r.want[v] = true
	}
	r.feed(5, 98)
	r.sim.ResetStats()
	r.sim.FailNext(apibansim.Fault302)
	code, out := r.once()
	for _, want := range []string{
		"APIBAN answered 302 redirect to /moved/api/get; redirects are not followed",
		"apiban.url: " + r.sim.URL() + " is plain http",
	} {
		if code == 0 || !strings.Contains(out, want) {
			t.Errorf("exit %d; the log must say %q", code, want)
		}
	}
	if other := r.sim.Stats().ByEndpoint[apibansim.EndpointOther]; other != 0 || r.sim.Requests() != 1 {
		t.Errorf("APIBAN saw %d requests, %d at the redirect target; want 1 and 0", r.sim.Requests(), other)
	}
	if t.Failed() {
		t.Fatal(out)
	}
	all := r.want
	r.want = before
	r.waitConverged(nil, 0)
	if got := r.savedState().Cursor; got != cursor {
		t.Fatalf("cursor %q after a redirect, want %q kept", got, cursor)
	}
	r.want = all
	r.recovers()
}
