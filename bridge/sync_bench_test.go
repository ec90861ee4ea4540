package bridge

import (
	"context"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bridge/allowlist"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bridge/lapi"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bridge/state"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/source"
)

// The benchmarks of issue 6 that need neither LAPI nor the network: the
// engine's own cost, with a feed and a LAPI in memory. test/bench/run.sh
// runs them beside the end-to-end numbers.

// benchFeed pages like APIBAN: 250 entries per request, a shorter page
// (possibly empty) is the last one; the cursor is the index of the next
// entry.
type benchFeed struct {
	entries  []netip.Prefix
	requests int
}

func (f *benchFeed) Next(_ context.Context, cursor string) (source.Page, error) {
	f.requests++
	from := 0
	if cursor != "" {
		from, _ = strconv.Atoi(cursor)
	}
	to := min(from+250, len(f.entries))
	b := source.Page{Prefixes: f.entries[from:to], Cursor: cursor, Last: to-from < 250}
	if to > from {
		b.Cursor = strconv.Itoa(to)
	}
	return b, nil
}

func (f *benchFeed) Requests() int { return f.requests }

// benchLAPI accepts every push and counts what it received. Its alerts
// are IDs first..last; Edge answers from them as a LAPI that lost nothing.
type benchLAPI struct {
	pushed, edges, reads int
	first, last          int64
}

func (l *benchLAPI) Push(_ context.Context, ds []lapi.Decision, now time.Time) (map[int64]time.Time, error) {
	l.pushed += len(ds)
	l.last++
	return map[int64]time.Time{l.last: now.Add(168 * time.Hour)}, nil
}

func (l *benchLAPI) Active(context.Context, time.Time) (lapi.Holdings, error) {
	l.reads++
	return lapi.Holdings{Active: map[netip.Prefix]time.Time{}, Alerts: map[int64]time.Time{}}, nil
}

func (l *benchLAPI) Edge(_ context.Context, newest bool) (int64, bool, error) {
	l.edges++
	if newest {
		return l.last, true, nil
	}
	return l.first, true, nil
}

func (l *benchLAPI) Allowlists(context.Context, time.Time) ([]allowlist.Entry, error) {
	return nil, nil
}

func benchPrefixes(n int) []netip.Prefix {
	out := make([]netip.Prefix, n)
	for i := range out {
		out[i] = netip.PrefixFrom(netip.AddrFrom4([4]byte{45, byte(i >> 16), byte(i >> 8), byte(i)}), 32)
	}
	return out
}

func benchOptions(dir string, now time.Time) Options {
	log := logrus.New()
	log.SetOutput(io.Discard)
	return Options{
		StatePath: filepath.Join(dir, "state.json"), Duration: 168 * time.Hour,
		RefreshBefore: 24 * time.Hour, BatchSize: 1000, LAPIAllowlists: true,
		// Ten operator CIDRs, as a PBX with a few trunks would have.
		Allowlist: benchAllowlist(),
		Now:       func() time.Time { return now }, Log: log,
	}
}

func benchAllowlist() []netip.Prefix {
	var out []netip.Prefix
	for i := range 10 {
		out = append(out, netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 51, byte(i), 0}), 24))
	}
	return out
}

// BenchmarkSyncIncremental100k is one `--once` sync's engine work with
// 100,000 known addresses and 10 new ones: load the state file, one feed
// request, filter, push 10, save. A fresh Engine per iteration, as a
// fresh process would have.
func BenchmarkSyncIncremental100k(b *testing.B) {
	benchIncremental(b, false, 100_000)
}

// BenchmarkSyncIncremental10k is the same with 10,000 known: with the one
// check request against LAPI, the cost must follow the list's size only
// through the state file.
func BenchmarkSyncIncremental10k(b *testing.B) {
	benchIncremental(b, false, 10_000)
}

// BenchmarkSyncIncremental100kDaemon is the same sync in the daemon,
// whose Engine keeps the state in memory between syncs: no load.
func BenchmarkSyncIncremental100kDaemon(b *testing.B) {
	benchIncremental(b, true, 100_000)
}

// benchIncremental measures one incremental sync with known addresses in
// the state, carried by one alert per 1,000 as a full sync leaves them.
// LAPI has lost nothing: the sync must cost one check request and no read
// back.
func benchIncremental(b *testing.B, daemon bool, known int) {
	const added = 10
	now := time.Unix(1_800_000_000, 0)
	all := benchPrefixes(known + added)
	st := state.New()
	st.Cursor = strconv.Itoa(known)
	st.LastFullSync = now
	for _, p := range all[:known] {
		st.Active.Set(p, now.Add(168*time.Hour))
	}
	alerts := int64(known / 1000)
	for id := int64(1); id <= alerts; id++ {
		st.Alerts[id] = now.Add(168 * time.Hour)
	}
	opts := benchOptions(b.TempDir(), now)
	// A snapshot as a full sync leaves it, the journal empty.
	if err := st.Save(opts.StatePath); err != nil {
		b.Fatal(err)
	}
	saved, err := os.ReadFile(opts.StatePath)
	if err != nil {
		b.Fatal(err)
	}
	feed := &benchFeed{entries: all}
	reset := func() *Engine {
		if err := os.WriteFile(opts.StatePath, saved, 0o600); err != nil {
			b.Fatal(err)
		}
		if err := os.Remove(state.JournalPath(opts.StatePath)); err != nil && !os.IsNotExist(err) {
			b.Fatal(err)
		}
		e := New(feed, &benchLAPI{first: 1, last: alerts}, opts)
		if daemon {
			if err := e.loadState(); err != nil {
				b.Fatal(err)
			}
		}
		return e
	}
	b.ReportAllocs()
	var cpu time.Duration
	for b.Loop() {
		b.StopTimer()
		e := reset()
		l := e.lapi.(*benchLAPI)
		runtime.GC() // the previous iteration's garbage is not this one's cost
		before := cpuTime(b)
		b.StartTimer()
		rep, err := e.Sync(context.Background(), false)
		b.StopTimer()
		cpu += cpuTime(b) - before
		b.StartTimer()
		if err != nil {
			b.Fatal(err)
		}
		if rep.Requests != 1 || rep.Pushed != added || l.pushed != added || rep.AlreadyActive != 0 {
			b.Fatalf("requests %d pushed %d (LAPI got %d), want 1 and %d", rep.Requests, rep.Pushed, l.pushed, added)
		}
		if l.edges != 1 || l.reads != 0 || rep.ReadBack != "" {
			b.Fatalf("the check cost %d requests and %d read-backs (%q), want 1 and 0", l.edges, l.reads, rep.ReadBack)
		}
	}
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// cpuTime is the user+sys time of this process so far, all threads (the
// garbage collector's included): the CPU a sync costs, where ns/op is
// wall time and counts waits for fsync.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkSyncFull100k is a first sync of a 100,000-entry feed: 401
// feed pages, 100 pushes of 1,000, a journal record after each and a
// snapshot at the end.
func BenchmarkSyncFull100k(b *testing.B) {
	benchFull(b, 100_000)
}

// BenchmarkSyncFull1M is the same with 1,000,000 entries. Its peak-RSS
// metric is the whole test process's (ru_maxrss, the in-memory feed of
// 32 MB included): run it alone, with -benchtime 1x.
func BenchmarkSyncFull1M(b *testing.B) {
	benchFull(b, 1_000_000)
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(ru.Maxrss)/1024, "peak-rss-MiB")
}

func benchFull(b *testing.B, n int) {
	now := time.Unix(1_800_000_000, 0)
	opts := benchOptions(b.TempDir(), now)
	feed := &benchFeed{entries: benchPrefixes(n)}
	b.ReportAllocs()
	var cpu time.Duration
	for b.Loop() {
		b.StopTimer()
		os.Remove(opts.StatePath)
		feed.requests = 0
		l := &benchLAPI{}
		e := New(feed, l, opts)
		runtime.GC()
		before := cpuTime(b)
		b.StartTimer()
		rep, err := e.Sync(context.Background(), true)
		cpu += cpuTime(b) - before
		if err != nil {
			b.Fatal(err)
		}
		if l.pushed != n || rep.Requests != n/250+1 {
			b.Fatalf("pushed %d in %d requests, want %d in %d", l.pushed, rep.Requests, n, n/250+1)
		}
	}
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// BenchmarkReadBack1M measures the heap a read-back of 1,000,000
// decisions holds while LAPI's answer (a map, lapi.Holdings.Active) is
// turned into the state's compact set: the map alone, then the map and
// the set together, the peak of the conversion.
func BenchmarkReadBack1M(b *testing.B) {
	now := time.Unix(1_800_000_000, 0)
	for range b.N {
		held := make(map[netip.Prefix]time.Time)
		for _, p := range benchPrefixes(1_000_000) {
			held[p] = now.Add(168 * time.Hour)
		}
		mapOnly := liveHeap()
		set := compactActive(held)
		both := liveHeap()
		runtime.KeepAlive(held)
		if set.Len() != len(held) {
			b.Fatalf("converted %d of %d", set.Len(), len(held))
		}
		b.ReportMetric(float64(mapOnly)/(1<<20), "map-MiB")
		b.ReportMetric(float64(both)/(1<<20), "map+set-MiB")
	}
}

func liveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
