package state

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"syscall"
	"testing"
	"time"
)

// benchState is a state tracking n single addresses, as after a full
// sync of an n-entry feed.
func benchState(n int) *State {
	s := New()
	s.Cursor = "1700099999"
	s.LastFullSync = time.Unix(1_800_000_000, 0)
	until := time.Unix(1_800_604_800, 0)
	for i := range n {
		a := netip.AddrFrom4([4]byte{45, byte(i >> 16), byte(i >> 8), byte(i)})
		s.Active.Set(netip.PrefixFrom(a, 32), until)
	}
	return s
}

// BenchmarkStateSave100k is the write of the state file after a push
// with 100,000 tracked addresses: encode, write, fsync, rename, fsync of
// the directory. It reports the file size.
func BenchmarkStateSave100k(b *testing.B) {
	s := benchState(100_000)
	path := filepath.Join(b.TempDir(), "state.json")
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Save(path); err != nil {
			b.Fatal(err)
		}
	}
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(fi.Size()), "file-bytes")
}

// BenchmarkStateEncode100k is Save without the file system.
func BenchmarkStateEncode100k(b *testing.B) {
	s := benchState(100_000)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Encode(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStateLoad100k is the read at start of every --once run.
func BenchmarkStateLoad100k(b *testing.B) {
	path := filepath.Join(b.TempDir(), "state.json")
	if err := benchState(100_000).Save(path); err != nil {
		b.Fatal(err)
	}
	benchLoad(b, path, 100_000)
}

// benchLoad times Load of path, which must hold want entries.
func benchLoad(b *testing.B, path string, want int) {
	b.ReportAllocs()
	for b.Loop() {
		s, err := Load(path)
		if err != nil {
			b.Fatal(err)
		}
		if s.Active.Len() != want {
			b.Fatalf("loaded %d entries, want %d", s.Active.Len(), want)
		}
	}
}

// TestBenchStateRoundTrip keeps the benchmark fixture honest, and reads
// singles over many of the decoder's chunks.
func TestBenchStateRoundTrip(t *testing.T) {
	s := benchState(20_000)
	data, err := s.Encode()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if !back.Active.Equal(&s.Active) || back.Cursor != s.Cursor {
		t.Fatalf("round trip: %d entries, cursor %q", back.Active.Len(), back.Cursor)
	}
}

// TestEncodeMatchesJSONMarshal: Encode must give exactly what
// encoding/json gives for the file layout: the singles packed and sorted
// by address, every other prefix in the list, sorted.
func TestEncodeMatchesJSONMarshal(t *testing.T) {
	random := New()
	rng := rand.New(rand.NewPCG(1, 2))
	for range 5000 {
		a := netip.AddrFrom4([4]byte{byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32())})
		random.Active.Set(netip.PrefixFrom(a, 32-rng.IntN(3)*8).Masked(), time.Unix(rng.Int64N(2_000_000_000), 0))
	}
	random.AddAlert(7, time.Unix(1_800_000_000, 0))
	random.AddAlert(3, time.Unix(1_800_000_001, 0))
	for _, s := range []*State{New(), benchState(3000), random, func() *State {
		s := New()
		s.Cursor = "a\"b\\c<\u2028>\x01é"
		for _, p := range []string{"2001:db8::1/128", "2001:db8::/32", "10.0.0.0/8", "1.2.3.4/32", "::ffff:0:0/96"} {
			s.Active.Set(netip.MustParsePrefix(p), time.Unix(-5, 0))
		}
		s.Active.Set(netip.MustParsePrefix("1.2.3.5/32"), time.Unix(1<<32, 0))
		return s
	}()} {
		got, err := s.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if want := marshalLayout(t, s); !bytes.Equal(got, want) {
			t.Fatalf("Encode differs from json.Marshal:\n got %.300s\nwant %.300s", got, want)
		}
	}
}

// marshalLayout is what json.Marshal gives for s in the file layout.
func marshalLayout(t *testing.T, s *State) []byte {
	f := fileFormat{Version: formatVersion, Cursor: s.Cursor, Active: []activeEntry{}, Singles: []byte{}}
	if !s.LastFullSync.IsZero() {
		f.LastFullSync = s.LastFullSync.Unix()
	}
	for _, id := range slices.Sorted(maps.Keys(s.Alerts)) {
		f.Alerts = append(f.Alerts, alertEntry{ID: id, Until: s.Alerts[id].Unix()})
	}
	keys := slices.SortedFunc(func(yield func(netip.Prefix) bool) {
		for p := range s.Active.All() {
			if !yield(p) {
				return
			}
		}
	}, netip.Prefix.Compare)
	for _, p := range keys {
		u := s.Active.Until(p).Unix()
		if p.Addr().Is4() && p.Bits() == 32 && u > 0 && u < 1<<32 {
			f.Singles = binary.BigEndian.AppendUint32(f.Singles, binary.BigEndian.Uint32(p.Addr().AsSlice()))
			f.Singles = binary.BigEndian.AppendUint32(f.Singles, uint32(u))
			continue
		}
		f.Active = append(f.Active, activeEntry{Prefix: p.String(), Until: u})
	}
	want, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	return want
}

// TestDecodeFastAgreesWithJSON: the fast path must read what Encode
// writes exactly as encoding/json does, and leave everything else to it.
func TestDecodeFastAgreesWithJSON(t *testing.T) {
	mixed := New()
	mixed.Cursor = `x","singles":"AAAA","y":"`
	mixed.LastFullSync = time.Unix(1_800_000_000, 0).UTC()
	for _, p := range []string{"2001:db8::1/128", "10.0.0.0/8", "1.2.3.4/32"} {
		mixed.Active.Set(netip.MustParsePrefix(p), time.Unix(1_800_600_000, 0).UTC())
	}
	var files [][]byte
	for _, s := range []*State{New(), mixed, benchState(500)} {
		data, err := s.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := decodeFast(data, &fileFormat{}); !ok {
			t.Fatalf("the fast path refuses Encode's output %.200s", data)
		}
		files = append(files, data)
	}
	// Not Encode's shape: the fast path must step aside, whatever
	// encoding/json then makes of them.
	other := []string{
		`{"version":3,"cursor":"5","active":[],"singles":"LQAAAWtJ0sA="} `,
		`{"version":3,"cursor":"5","active":[], "singles":"LQAAAWtJ0sA="}`,
		`{"version":3,"cursor":"5","singles":"LQAAAWtJ0sA=","active":[]}`,
		`{"version":3,"cursor":"5","active":[],"singles":"LQAAAWtJ0sA"}`,
		"{\"version\":3,\"cursor\":\"5\",\"active\":[],\"singles\":\"LQAA\nAWtJ0sA=\"}",
		`{"version":3,"cursor":"5","active":[],"singles":"LQAA\u0041WtJ0sA="}`,
		`{"version":3,"cursor":"5","active":[],"singles":"LQAAAWtJ0sA=","singles":""}`,
		`{"version":3,"cursor":"5","active":[],"singles":""`,
		`{"version":3,"cursor":"5","active":[]}`,
		`{"version":2,"cursor":"5","active":[{"p":"1.2.3.4/32","u":12}]}`,
	}
	for _, o := range other {
		if _, ok := decodeFast([]byte(o), &fileFormat{}); ok {
			t.Errorf("fast path accepted %s", o)
		}
		files = append(files, []byte(o))
	}
	for _, data := range files {
		var f fileFormat
		werr := json.Unmarshal(data, &f)
		var want *State
		var singles []uint64
		if werr == nil {
			singles, werr = unpack(f.Singles)
		}
		if werr == nil {
			want, werr = fromFile(&f, singles)
		}
		got, gerr := Decode(data)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("%.200s: Decode error %v, encoding/json error %v", data, gerr, werr)
		}
		if werr != nil {
			continue
		}
		if got.Cursor != want.Cursor || !got.LastFullSync.Equal(want.LastFullSync) || !got.Active.Equal(&want.Active) {
			t.Fatalf("%.200s: Decode and encoding/json disagree", data)
		}
	}
}

// TestSaveStreamsWhatEncodeReturns: Save writes the file in chunks; the
// bytes must be Encode's, on every call, as the base it keeps changes.
func TestSaveStreamsWhatEncodeReturns(t *testing.T) {
	s := benchState(20_000) // about 800 KB: many chunks
	s.Active.Set(netip.MustParsePrefix("2001:db8::/48"), time.Unix(1_800_000_000, 0))
	path := filepath.Join(t.TempDir(), "state.json")
	for range 3 {
		if err := s.Save(path); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		want, err := s.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("saved %d bytes, Encode gives %d, or they differ", len(got), len(want))
		}
		s.Active.Set(netip.PrefixFrom(netip.AddrFrom4([4]byte{203, 0, 113, byte(s.Active.Len())}), 32), time.Unix(1_800_000_001, 0))
	}
}

// BenchmarkStatePerPush is what recording one push of 1,000 new
// decisions (and their alert) costs with n already known: before the
// journal, a whole snapshot (Save); now one journal record (Append).
// cpu-ns/op is the process's user+sys time, ns/op includes the fsyncs.
// The journal's cost must not follow n.
func BenchmarkStatePerPush(b *testing.B) {
	for _, n := range []int{10_000, 100_000, 1_000_000} {
		for _, how := range []string{"snapshot", "journal"} {
			b.Run(fmt.Sprintf("%s/%dk", how, n/1000), func(b *testing.B) {
				s := benchState(n)
				path := filepath.Join(b.TempDir(), "state.json")
				if err := s.Save(path); err != nil {
					b.Fatal(err)
				}
				push := make([]netip.Prefix, 1000)
				for i := range push {
					push[i] = netip.PrefixFrom(netip.AddrFrom4([4]byte{46, 0, byte(i >> 8), byte(i)}), 32)
				}
				until := time.Unix(1_800_604_800, 0)
				b.ReportAllocs()
				runtime.GC()
				var cpu time.Duration
				for b.Loop() {
					// The map writes are the engine's with or without
					// a journal: not counted.
					b.StopTimer()
					for _, p := range push {
						s.Add(p, until)
					}
					s.AddAlert(7, until)
					before := cpuTime(b)
					b.StartTimer()
					var err error
					if how == "snapshot" {
						err = s.Save(path)
					} else {
						err = s.Append(path)
					}
					cpu += cpuTime(b) - before
					if err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
			})
		}
	}
}

// BenchmarkStateLoad100kJournal is Load of 100,000 entries in the
// snapshot and 100 records of 10 in the journal: a --once run some
// time after the last compaction.
func BenchmarkStateLoad100kJournal(b *testing.B) {
	path := filepath.Join(b.TempDir(), "state.json")
	s := benchState(100_000)
	if err := s.Save(path); err != nil {
		b.Fatal(err)
	}
	for r := range 100 {
		for i := range 10 {
			s.Add(netip.PrefixFrom(netip.AddrFrom4([4]byte{46, 0, byte(r), byte(i)}), 32), time.Unix(1_800_604_800, 0))
		}
		if err := s.Append(path); err != nil {
			b.Fatal(err)
		}
	}
	benchLoad(b, path, 101_000)
}

// cpuTime is the user+sys time of this process so far, all threads.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
