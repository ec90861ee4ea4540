package bridge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bridge/allowlist"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bridge/lapi"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bridge/state"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/source"
)

// feed is an in-memory paged feed: entry i has cursor id i+1.
type feed struct {
	entries  []netip.Prefix
	page     int
	failAt   int // request number (1-based) that fails; 0 never
	requests int
}

func (f *feed) Next(_ context.Context, cursor string) (source.Page, error) {
	f.requests++
	if f.requests == f.failAt {
		return source.Page{}, errors.New("feed down")
	}
	from := 0
	if cursor != "" {
		from, _ = strconv.Atoi(cursor)
	}
	to := min(from+f.page, len(f.entries))
	b := source.Page{Prefixes: append([]netip.Prefix(nil), f.entries[from:to]...), Cursor: cursor, Last: to-from < f.page}
	if to > from {
		b.Cursor = strconv.Itoa(to)
	}
	return b, nil
}

func (f *feed) Requests() int { return f.requests }

func (f *feed) add(n int) {
	for range n {
		i := len(f.entries)
		f.entries = append(f.entries, netip.PrefixFrom(netip.AddrFrom4([4]byte{45, byte(i >> 16), byte(i >> 8), byte(i)}), 32))
	}
}

// fakeLAPI stores what was pushed like LAPI would, one row per decision,
// one alert per push, and answers Edge and Active from them.
type fakeLAPI struct {
	rows      []netip.Prefix
	until     map[netip.Prefix]time.Time
	alerts    map[int64][]netip.Prefix // alert ID -> its decisions
	nextID    int64
	pushes    int
	edges     int // Edge calls
	reads     int // Active calls
	failPush  error
	edgeErr   error // every Edge fails with it
	storeFail bool  // the failing push still stores its rows (lost answer)
	allow     []allowlist.Entry
	allowErr  error
	onPush    func() // called at the start of every push
}

func newFakeLAPI() *fakeLAPI {
	return &fakeLAPI{until: map[netip.Prefix]time.Time{}, alerts: map[int64][]netip.Prefix{}, nextID: 1}
}

func (l *fakeLAPI) Push(_ context.Context, ds []lapi.Decision, now time.Time) (map[int64]time.Time, error) {
	if l.onPush != nil {
		l.onPush()
	}
	if l.failPush != nil && !l.storeFail {
		return nil, l.failPush
	}
	l.pushes++
	id := l.nextID
	l.nextID++
	var last time.Time
	for _, d := range ds {
		l.rows = append(l.rows, d.Prefix)
		until := now.Add(d.Duration)
		if until.After(l.until[d.Prefix]) {
			l.until[d.Prefix] = until
		}
		if until.After(last) {
			last = until
		}
		l.alerts[id] = append(l.alerts[id], d.Prefix)
	}
	return map[int64]time.Time{id: last}, l.failPush
}

func (l *fakeLAPI) Active(_ context.Context, now time.Time) (lapi.Holdings, error) {
	l.reads++
	out := lapi.Holdings{Active: map[netip.Prefix]time.Time{}, Alerts: map[int64]time.Time{}}
	for p, u := range l.until {
		if u.After(now) {
			out.Active[p] = u
		}
	}
	for id, ps := range l.alerts {
		for _, p := range ps {
			if u, ok := out.Active[p]; ok && u.After(out.Alerts[id]) {
				out.Alerts[id] = u
			}
		}
	}
	return out, nil
}

func (l *fakeLAPI) Edge(_ context.Context, newest bool) (int64, bool, error) {
	l.edges++
	if l.edgeErr != nil {
		return 0, false, l.edgeErr
	}
	var id int64
	found := false
	for a, ps := range l.alerts {
		active := false
		for _, p := range ps {
			active = active || l.until[p] != (time.Time{})
		}
		if active && (!found || (newest && a > id) || (!newest && a < id)) {
			id, found = a, true
		}
	}
	return id, found, nil
}

// dropAlert deletes an alert with its decisions, as LAPI's flush does.
func (l *fakeLAPI) dropAlert(id int64) {
	gone := map[netip.Prefix]bool{}
	for _, p := range l.alerts[id] {
		delete(l.until, p)
		gone[p] = true
	}
	delete(l.alerts, id)
	kept := l.rows[:0]
	for _, p := range l.rows {
		if !gone[p] {
			kept = append(kept, p)
		}
	}
	l.rows = kept
}

// reset is a new, empty database; IDs start again at 1.
func (l *fakeLAPI) reset() {
	l.until, l.alerts, l.nextID, l.rows = map[netip.Prefix]time.Time{}, map[int64][]netip.Prefix{}, 1, nil
}

func (l *fakeLAPI) Allowlists(context.Context, time.Time) ([]allowlist.Entry, error) {
	return l.allow, l.allowErr
}

func (l *fakeLAPI) duplicates() []netip.Prefix {
	seen := map[netip.Prefix]int{}
	var dup []netip.Prefix
	for _, p := range l.rows {
		if seen[p]++; seen[p] == 2 {
			dup = append(dup, p)
		}
	}
	return dup
}

type rig struct {
	feed *feed
	lapi *fakeLAPI
	opts Options
	now  time.Time
}

func newRig(t *testing.T) *rig {
	r := &rig{feed: &feed{page: 250}, lapi: newFakeLAPI(), now: time.Unix(1_800_000_000, 0)}
	log := logrus.New()
	log.SetOutput(io.Discard)
	r.opts = Options{
		StatePath: filepath.Join(t.TempDir(), "state.json"), Duration: 168 * time.Hour,
		RefreshBefore: 24 * time.Hour, BatchSize: 1000, LAPIAllowlists: true,
		Now: func() time.Time { return r.now }, Log: log,
	}
	return r
}

func (r *rig) engine() *Engine { return New(r.feed, r.lapi, r.opts) }

func (r *rig) sync(t *testing.T, e *Engine, full bool) Report {
	t.Helper()
	rep, err := e.Sync(context.Background(), full)
	if err != nil {
		t.Fatalf("sync: %v", err)
	}
	return rep
}

func (r *rig) savedState(t *testing.T) *state.State {
	t.Helper()
	st, err := state.Load(r.opts.StatePath)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestFirstSyncPushesEverythingThenOnlyWhatIsNew(t *testing.T) {
	r := newRig(t)
	r.feed.add(2600)
	e := r.engine()
	rep := r.sync(t, e, false)
	if rep.Pushed != 2600 || rep.Fetched != 2600 || !rep.Full || rep.Requests != 11 {
		t.Fatalf("first sync: %+v", rep)
	}
	if r.lapi.pushes != 3 {
		t.Errorf("pushes = %d, want 3 (1000 decisions each, then the rest)", r.lapi.pushes)
	}
	if st := r.savedState(t); st.Cursor != "2600" || st.Active.Len() != 2600 {
		t.Fatalf("state cursor %q with %d active", st.Cursor, st.Active.Len())
	}

	r.feed.add(10)
	r.now = r.now.Add(5 * time.Minute)
	rep = r.sync(t, e, false)
	if rep.Pushed != 10 || rep.Fetched != 10 || rep.Full || rep.Requests != 1 {
		t.Fatalf("incremental sync: %+v", rep)
	}
	if d := r.lapi.duplicates(); len(d) != 0 {
		t.Fatalf("duplicates in LAPI: %v", d)
	}
}

func TestRestartResumesFromSavedCursor(t *testing.T) {
	r := newRig(t)
	r.feed.add(300)
	r.sync(t, r.engine(), false)
	r.feed.add(5)
	rep := r.sync(t, r.engine(), false) // a new process: state from disk
	if rep.Pushed != 5 || rep.Requests != 1 || rep.Full {
		t.Fatalf("after restart: %+v", rep)
	}
}

func TestFailedPushKeepsCursorAndNeverDuplicates(t *testing.T) {
	r := newRig(t)
	r.feed.add(100)
	r.sync(t, r.engine(), false)
	r.feed.add(50)
	// LAPI stores the rows but the answer is lost.
	r.lapi.failPush, r.lapi.storeFail = errors.New("connection reset"), true
	if _, err := r.engine().Sync(context.Background(), false); err == nil {
		t.Fatal("sync must fail when the push fails")
	}
	if st := r.savedState(t); st.Cursor != "100" {
		t.Fatalf("cursor advanced to %q after a failed push", st.Cursor)
	}
	r.lapi.failPush = nil
	rep := r.sync(t, r.engine(), false)
	if rep.Pushed != 0 || rep.AlreadyActive != 50 {
		t.Fatalf("after recovery: %+v", rep)
	}
	if d := r.lapi.duplicates(); len(d) != 0 {
		t.Fatalf("%d duplicates after a lost answer", len(d))
	}
	if st := r.savedState(t); st.Cursor != "150" || st.Active.Len() != 150 {
		t.Fatalf("state after recovery: cursor %q, %d active", st.Cursor, st.Active.Len())
	}
	if on, _ := state.PushInterrupted(r.opts.StatePath); on {
		t.Fatal("push marker left behind")
	}
}

// TestOneMarkerPerPass: the marker written before a pass's first push
// covers all of them (one durable write per push, the record's) and goes
// once the last is recorded; a push whose answer is lost keeps it.
func TestOneMarkerPerPass(t *testing.T) {
	r := newRig(t)
	r.opts.BatchSize, r.feed.page = 100, 100
	marker := r.opts.StatePath + ".pushing"
	var first os.FileInfo
	pushes := 0
	r.lapi.onPush = func() {
		pushes++
		fi, err := os.Stat(marker)
		if err != nil {
			t.Fatalf("push %d without the marker: %v", pushes, err)
		}
		if first == nil {
			first = fi
		} else if !os.SameFile(first, fi) || !fi.ModTime().Equal(first.ModTime()) {
			t.Fatalf("push %d: the marker was written again", pushes)
		}
		if pushes == 5 { // the second push of the second pass
			r.lapi.failPush, r.lapi.storeFail = errors.New("connection reset"), true
		}
	}
	r.feed.add(300)
	r.sync(t, r.engine(), false)
	if on, _ := state.PushInterrupted(r.opts.StatePath); on || pushes != 3 {
		t.Fatalf("after a pass of %d pushes the marker is on: %v", pushes, on)
	}
	r.feed.add(200)
	first = nil
	e := r.engine()
	if _, err := e.Sync(context.Background(), false); err == nil {
		t.Fatal("sync must fail when the push fails")
	}
	if on, _ := state.PushInterrupted(r.opts.StatePath); !on {
		t.Fatal("a push with a lost answer must leave the marker")
	}
	if st := r.savedState(t); st.Active.Len() != 400 || pushes != 5 {
		t.Fatalf("state records %d active after %d pushes, want 400 (the lost one is not recorded)", st.Active.Len(), pushes)
	}
}

func TestPushRefusedThenRetriedPushesOnce(t *testing.T) {
	r := newRig(t)
	r.feed.add(40)
	r.lapi.failPush = errors.New("500")
	e := r.engine()
	if _, err := e.Sync(context.Background(), false); err == nil {
		t.Fatal("want error")
	}
	r.lapi.failPush = nil
	rep := r.sync(t, e, false)
	if rep.Pushed != 40 || len(r.lapi.rows) != 40 {
		t.Fatalf("retry: %+v, rows %d", rep, len(r.lapi.rows))
	}
}

func TestSourceErrorKeepsEarlierPages(t *testing.T) {
	r := newRig(t)
	r.feed.add(1000)
	r.feed.failAt = 3
	r.opts.BatchSize = 200
	_, err := r.engine().Sync(context.Background(), false)
	if err == nil {
		t.Fatal("want the feed error")
	}
	if st := r.savedState(t); st.Cursor != "500" || st.Active.Len() != 500 {
		t.Fatalf("pages before the error: cursor %q, %d active", st.Cursor, st.Active.Len())
	}
	r.feed.failAt = 0
	rep := r.sync(t, r.engine(), false)
	if rep.Pushed != 500 || len(r.lapi.rows) != 1000 {
		t.Fatalf("resume: %+v rows %d", rep, len(r.lapi.rows))
	}
}

func TestAllowlistsAreAppliedBeforePushing(t *testing.T) {
	r := newRig(t)
	r.feed.entries = []netip.Prefix{
		netip.MustParsePrefix("192.168.1.1/32"),  // not public
		netip.MustParsePrefix("198.51.100.7/32"), // configured
		netip.MustParsePrefix("203.0.113.5/32"),  // LAPI allowlist
		netip.MustParsePrefix("203.0.114.5/32"),  // pushed
	}
	r.opts.Allowlist = []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}
	r.lapi.allow = []allowlist.Entry{{Prefix: netip.MustParsePrefix("203.0.113.0/24"), Source: "trunks"}}
	rep := r.sync(t, r.engine(), false)
	if rep.Allowlisted != 3 || rep.Pushed != 1 || r.lapi.rows[0].String() != "203.0.114.5/32" {
		t.Fatalf("report %+v rows %v", rep, r.lapi.rows)
	}
}

func TestOldLAPIWithoutAllowlistsIsTolerated(t *testing.T) {
	r := newRig(t)
	r.feed.add(3)
	r.lapi.allowErr = lapi.ErrAllowlistsUnsupported
	if rep := r.sync(t, r.engine(), false); rep.Pushed != 3 {
		t.Fatalf("%+v", rep)
	}
}

func TestUnreadableAllowlistsStopTheSync(t *testing.T) {
	r := newRig(t)
	r.feed.add(3)
	r.lapi.allowErr = errors.New("403")
	if _, err := r.engine().Sync(context.Background(), false); err == nil || len(r.lapi.rows) != 0 {
		t.Fatalf("err %v, rows %d: pushing without allowlists must not happen", err, len(r.lapi.rows))
	}
	if r.feed.requests != 0 {
		t.Fatalf("feed was queried %d times before LAPI was usable", r.feed.requests)
	}
}

func TestRelistedAddressNearItsEndGetsAFreshDecision(t *testing.T) {
	r := newRig(t)
	r.feed.add(2)
	e := r.engine()
	r.sync(t, e, false)
	relisted := r.feed.entries[0]
	// 150h later: 18h left, below refresh_before (24h)
	r.now = r.now.Add(150 * time.Hour)
	r.feed.entries = append(r.feed.entries, relisted)
	rep := r.sync(t, e, false)
	if rep.Pushed != 1 {
		t.Fatalf("near-end relisting: %+v", rep)
	}
	if got := r.savedState(t).Active.Until(relisted); !got.Equal(r.now.Add(168 * time.Hour)) {
		t.Fatalf("until %v, want a full new duration", got)
	}
	// relisted again with plenty left: not pushed
	r.feed.entries = append(r.feed.entries, relisted)
	if rep := r.sync(t, e, false); rep.Pushed != 0 || rep.AlreadyActive != 1 {
		t.Fatalf("fresh relisting: %+v", rep)
	}
}

func TestLostStateFileRebuildsFromLAPI(t *testing.T) {
	r := newRig(t)
	r.feed.add(600)
	r.sync(t, r.engine(), false)
	os.Remove(r.opts.StatePath)
	r.feed.add(7)
	rep := r.sync(t, r.engine(), false)
	if !rep.Full || rep.Pushed != 7 || rep.AlreadyActive != 600 {
		t.Fatalf("after losing the state file: %+v", rep)
	}
	if d := r.lapi.duplicates(); len(d) != 0 {
		t.Fatalf("%d duplicates", len(d))
	}
}

func TestCorruptStateFileIsMovedAsideAndRebuilt(t *testing.T) {
	r := newRig(t)
	r.feed.add(20)
	r.sync(t, r.engine(), false)
	if err := os.WriteFile(r.opts.StatePath, []byte(`{"version":1,"cur`), 0o600); err != nil {
		t.Fatal(err)
	}
	rep := r.sync(t, r.engine(), false)
	if rep.Pushed != 0 || rep.AlreadyActive != 20 {
		t.Fatalf("%+v", rep)
	}
	aside, _ := filepath.Glob(r.opts.StatePath + ".corrupt-*")
	if len(aside) != 1 {
		t.Fatalf("corrupt file not kept aside: %v", aside)
	}
}

func TestFullResyncWhenDue(t *testing.T) {
	r := newRig(t)
	r.opts.FullResyncInterval = 168 * time.Hour
	r.feed.add(10)
	e := r.engine()
	r.sync(t, e, false)
	r.now = r.now.Add(time.Hour)
	if rep := r.sync(t, e, false); rep.Full {
		t.Fatal("full resync before it is due")
	}
	r.now = r.now.Add(168 * time.Hour) // every decision has now ended
	rep := r.sync(t, e, false)
	if !rep.Full || rep.Pushed != 10 || rep.Fetched != 10 {
		t.Fatalf("due full resync: %+v", rep)
	}
	r.now = r.now.Add(time.Hour)
	if rep := r.sync(t, e, true); !rep.Full || rep.Pushed != 0 || rep.AlreadyActive != 10 {
		t.Fatalf("forced full resync pushes only what needs it: %+v", rep)
	}
}

func TestDryRunWritesNothing(t *testing.T) {
	r := newRig(t)
	r.feed.add(5)
	r.opts.DryRun = true
	rep := r.sync(t, r.engine(), false)
	if len(rep.WouldPush) != 5 || len(r.lapi.rows) != 0 || rep.Pushed != 0 {
		t.Fatalf("dry run: %+v rows %d", rep, len(r.lapi.rows))
	}
	entries, _ := os.ReadDir(filepath.Dir(r.opts.StatePath))
	if len(entries) != 0 {
		t.Fatalf("dry run wrote files: %v", entries)
	}
}

func TestDuplicatesWithinOneFeedPassArePushedOnce(t *testing.T) {
	r := newRig(t)
	p := netip.MustParsePrefix("45.0.0.1/32")
	r.feed.entries = []netip.Prefix{p, p, netip.MustParsePrefix("45.0.0.2/32"), p}
	if rep := r.sync(t, r.engine(), false); rep.Pushed != 2 {
		t.Fatalf("%+v", rep)
	}
	sort.Slice(r.lapi.rows, func(i, j int) bool { return r.lapi.rows[i].Addr().Less(r.lapi.rows[j].Addr()) })
	if fmt.Sprint(r.lapi.rows) != "[45.0.0.1/32 45.0.0.2/32]" {
		t.Fatalf("rows %v", r.lapi.rows)
	}
}

// Decisions that ended are dropped from the state file, so it does not
// grow with every address ever listed.
func TestEndedDecisionsLeaveTheStateFile(t *testing.T) {
	r := newRig(t)
	r.feed.add(3)
	e := r.engine()
	r.sync(t, e, false)
	r.now = r.now.Add(169 * time.Hour) // the three decisions have ended
	r.feed.add(1)
	if rep := r.sync(t, e, false); rep.Pushed != 1 {
		t.Fatalf("%+v", rep)
	}
	// The journal keeps what it recorded until the next snapshot; every
	// reader prunes at load, and the snapshot holds only what is active.
	st := r.savedState(t)
	if st.Prune(r.now); st.Active.Len() != 1 {
		t.Fatalf("state keeps %d entries, want only the one still active: %v", st.Active.Len(), st.Active)
	}
	r.feed.entries = r.feed.entries[3:] // APIBAN no longer lists them
	r.sync(t, e, true)                  // a full sync ends with a snapshot
	if _, err := os.Stat(state.JournalPath(r.opts.StatePath)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the snapshot must leave no journal behind: %v", err)
	}
	if st := r.savedState(t); st.Active.Len() != 1 {
		t.Fatalf("snapshot keeps %d entries, want only the one still active: %v", st.Active.Len(), st.Active)
	}
}

// A new process replays what the last one journaled: the pushes of an
// incremental sync are in the journal, not the snapshot, and the next
// start knows them without reading LAPI back.
func TestJournalIsReplayedAtStart(t *testing.T) {
	r := newRig(t)
	r.opts.BatchSize = 100
	r.feed.add(300)
	r.sync(t, r.engine(), false) // first sync: ends with a snapshot
	r.feed.add(250)
	if rep := r.sync(t, r.engine(), false); rep.Pushed != 250 || rep.ReadBack != "" {
		t.Fatalf("incremental: %+v", rep)
	}
	if fi, err := os.Stat(state.JournalPath(r.opts.StatePath)); err != nil || fi.Size() == 0 {
		t.Fatalf("the incremental sync must have journaled its pushes: %v", err)
	}
	r.feed.add(5)
	reads := r.lapi.reads
	rep := r.sync(t, r.engine(), false)
	if rep.Pushed != 5 || rep.AlreadyActive != 0 || rep.ReadBack != "" || r.lapi.reads != reads {
		t.Fatalf("after restart: %+v, %d read-backs", rep, r.lapi.reads-reads)
	}
	if st := r.savedState(t); st.Active.Len() != 555 || st.Cursor != "555" {
		t.Fatalf("state: %d active, cursor %q", st.Active.Len(), st.Cursor)
	}
}

// A sync dies with its last journal record torn and its push unconfirmed:
// the next start drops the torn record, reads LAPI back, and nothing is
// lost or pushed twice.
func TestTornJournalRecordAfterACrashIsReadBack(t *testing.T) {
	r := newRig(t)
	r.opts.BatchSize, r.feed.page = 100, 100 // one push, one record per page
	r.feed.add(300)
	r.sync(t, r.engine(), false)
	r.feed.add(300)
	// The third push is stored but its answer lost; the two before it
	// were journaled.
	e := r.engine()
	e.lapi = &failAfter{fakeLAPI: r.lapi, after: r.lapi.pushes + 2}
	if _, err := e.Sync(context.Background(), false); err == nil {
		t.Fatal("the sync must fail on the lost answer")
	}
	jpath := state.JournalPath(r.opts.StatePath)
	data, err := os.ReadFile(jpath)
	if err != nil {
		t.Fatal(err)
	}
	// As if the process died half-way through writing the last record.
	if err := os.WriteFile(jpath, data[:len(data)-9], 0o600); err != nil {
		t.Fatal(err)
	}
	st := r.savedState(t)
	if !st.JournalDamaged() || st.Active.Len() != 400 {
		t.Fatalf("torn journal: damaged %v, %d active (want the first record only: 400)", st.JournalDamaged(), st.Active.Len())
	}
	// The marker alone would force the read-back; without it the torn
	// record must still do so.
	if err := state.EndPush(r.opts.StatePath); err != nil {
		t.Fatal(err)
	}
	rep := r.sync(t, r.engine(), false)
	if !strings.Contains(rep.ReadBack, "damaged record") {
		t.Fatalf("a torn record must make the next sync read LAPI back: %+v", rep)
	}
	if d := r.lapi.duplicates(); len(d) != 0 {
		t.Fatalf("%d duplicates", len(d))
	}
	if st := r.savedState(t); st.Active.Len() != 600 || st.Cursor != "600" || st.JournalDamaged() {
		t.Fatalf("state: %d active, cursor %q, damaged %v", st.Active.Len(), st.Cursor, st.JournalDamaged())
	}
	if len(r.lapi.until) != 600 {
		t.Fatalf("LAPI holds %d, want 600", len(r.lapi.until))
	}
}

// failAfter stores every push like LAPI, but loses the answer of every
// push after the first `after`.
type failAfter struct {
	*fakeLAPI
	after int
}

func (f *failAfter) Push(ctx context.Context, ds []lapi.Decision, now time.Time) (map[int64]time.Time, error) {
	ids, err := f.fakeLAPI.Push(ctx, ds, now)
	if err == nil && f.pushes > f.after {
		return nil, errors.New("connection reset")
	}
	return ids, err
}
