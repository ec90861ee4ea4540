package bouncer_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	csbouncer "github.com/crowdsecurity/go-cs-bouncer"

	. "github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bouncer" // the package under test
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bouncer/bouncertest"
)

// fakeLAPI serves the decision stream and records usage metrics.
type fakeLAPI struct {
	mu      sync.Mutex
	pulls   []string // query strings
	keys    []string
	metrics []string // bodies
}

func (f *fakeLAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.keys = append(f.keys, r.Header.Get("X-Api-Key"))
	switch r.URL.Path {
	case "/v1/decisions/stream":
		f.pulls = append(f.pulls, r.URL.RawQuery)
		resp := map[string]any{"new": []any{}, "deleted": []any{}}
		if r.URL.Query().Get("startup") == "true" {
			resp["new"] = []map[string]any{
				{"id": 1, "origin": "apiban", "scenario": "s", "scope": "Ip", "type": "ban", "value": "192.0.2.1", "duration": "1h"},
				{"id": 2, "origin": "crowdsec", "scenario": "s", "scope": "Range", "type": "ban", "value": "198.51.100.0/24", "duration": "1h"},
			}
		}
		_ = json.NewEncoder(w).Encode(resp)
	case "/v1/usage-metrics":
		body, _ := io.ReadAll(r.Body)
		f.metrics = append(f.metrics, string(body))
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte("{}"))
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeLAPI) snapshot() (pulls, keys, metrics []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string{}, f.pulls...), append([]string{}, f.keys...), append([]string{}, f.metrics...)
}

// TestRunAgainstStream runs the whole bouncer (go-cs-bouncer's stream and
// usage metrics) against a fake LAPI.
func TestRunAgainstStream(t *testing.T) {
	lapi := &fakeLAPI{}
	srv := httptest.NewServer(lapi)
	defer srv.Close()
	r := &counting{Recorder: bouncertest.NewRecorder(false), c: map[DropKey]Counters{{"apiban", "ipv4"}: {Packets: 5, Bytes: 300}}}
	b := New(r, Options{StreamOptions: StreamOptions{APIURL: srv.URL, APIKey: "bouncer-key", UpdateFrequency: 50 * time.Millisecond,
		Origins: []string{"apiban", "crowdsec"}, UserAgent: "test/1"}, MetricsInterval: 100 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()

	deadline := time.Now().Add(10 * time.Second)
	for {
		_, _, metrics := lapi.snapshot()
		if len(metrics) > 0 && b.Stats().Elements == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no usage metrics or elements: stats %+v", b.Stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !r.Cleaned() {
		t.Error("no cleanup at shutdown")
	}
	pulls, keys, metrics := lapi.snapshot()
	if !strings.Contains(pulls[0], "startup=true") || !strings.Contains(pulls[0], "origins=apiban%2Ccrowdsec") ||
		!strings.Contains(pulls[0], "scopes=ip%2Crange") {
		t.Errorf("first pull %q: want startup, origins and scopes", pulls[0])
	}
	for _, k := range keys {
		if k != "bouncer-key" {
			t.Errorf("request with key %q", k)
		}
	}
	for _, want := range []string{`"active_decisions"`, `"dropped"`, `"origin":"apiban"`, `"ip_type":"ipv4"`, `"type":"crowdsec-apiban-bridge"`} {
		if !strings.Contains(metrics[0], want) {
			t.Errorf("usage metrics lack %s: %s", want, metrics[0])
		}
	}
}

// Follow restarts the stream every resync: each restart asks LAPI for
// its whole list (startup=true) and marks that answer Full; every other
// answer is a delta.
func TestFollowRestartsWithTheFullList(t *testing.T) {
	lapi := &fakeLAPI{}
	srv := httptest.NewServer(lapi)
	defer srv.Close()
	sb, err := OpenStream(StreamOptions{APIURL: srv.URL, APIKey: "bouncer-key", UpdateFrequency: 20 * time.Millisecond, UserAgent: "test/1"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	answers := make(chan Answer)
	done := make(chan error, 1)
	go func() { done <- Follow(ctx, sb, 100*time.Millisecond, answers) }()
	var got []Answer
	for full := 0; full < 3; {
		a := <-answers
		got = append(got, a)
		if a.Full {
			full++
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !got[0].Full {
		t.Error("the first answer is not marked full")
	}
	for i, a := range got {
		if a.Full != (len(a.New) == 2) {
			t.Errorf("answer %d: full %v with %d new decisions (the full list has 2, a delta none)", i, a.Full, len(a.New))
		}
	}
	pulls, _, _ := lapi.snapshot()
	startups := 0
	for _, p := range pulls {
		if strings.Contains(p, "startup=true") {
			startups++
		}
	}
	// At least one per full answer: under load a resync may fall
	// before a startup answer is read, which then is never sent.
	if startups < 3 {
		t.Errorf("%d startup pulls, want one per full answer (3): %v", startups, pulls)
	}
}

// Every request of the stream has a deadline: go-cs-bouncer's own client
// has none, and a LAPI that never answers would stop the reader for good.
func TestStreamRequestsHaveADeadline(t *testing.T) {
	sb, err := OpenStream(StreamOptions{APIURL: "http://127.0.0.1:1/", APIKey: "k", UpdateFrequency: 10 * time.Second, UserAgent: "test/1"})
	if err != nil {
		t.Fatal(err)
	}
	if got := sb.APIClient.GetClient().Timeout; got != 2*time.Minute {
		t.Fatalf("stream client timeout %s, want 2m", got)
	}
	if got := StreamTimeout(5 * time.Minute); got != 10*time.Minute {
		t.Fatalf("StreamTimeout(5m) = %s, want two polls", got)
	}
}

// A stream asked to stop before it started ends without an error: its
// end and the cancellation are both ready at once, and whichever the
// select takes, stopping is not a failure (it once was, one run in ten).
func TestFollowOfACanceledContextIsNoError(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, procs := range []int{1, 2, 4} {
		runtime.GOMAXPROCS(procs)
		for i := range 3000 {
			sb, err := OpenStream(StreamOptions{APIURL: "http://127.0.0.1:1/", APIKey: "k", UpdateFrequency: 10 * time.Second, UserAgent: "test/1"})
			if err != nil {
				t.Fatal(err)
			}
			if err := Follow(ctx, sb, time.Hour, make(chan Answer)); err != nil {
				t.Fatalf("GOMAXPROCS %d, run %d: %v", procs, i, err)
			}
		}
	}
}

// ReadStream hands the stream's answers to its reader, the full list
// first, and ends with the reader's error; a failing opened hook ends it
// before any answer, named by the reader.
func TestReadStreamHandsAnswersToItsReader(t *testing.T) {
	srv := httptest.NewServer(&fakeLAPI{})
	defer srv.Close()
	o := StreamOptions{APIURL: srv.URL, APIKey: "k", UpdateFrequency: 20 * time.Millisecond, UserAgent: "test/1"}
	done := errors.New("done")
	var first Answer
	err := ReadStream(context.Background(), o, 0, "mirror", nil, func(_ context.Context, answers <-chan Answer) error {
		first = <-answers
		return done
	})
	if !errors.Is(err, done) {
		t.Fatalf("ReadStream = %v, want the reader's error", err)
	}
	if !first.Full || len(first.New) != 2 {
		t.Fatalf("first answer: full %v with %d decisions, want LAPI's whole list (2)", first.Full, len(first.New))
	}
	consumed := false
	err = ReadStream(context.Background(), o, 0, "mirror",
		func(context.Context, *csbouncer.StreamBouncer) error { return errors.New("no metrics") },
		func(context.Context, <-chan Answer) error { consumed = true; return nil })
	if err == nil || err.Error() != "mirror: no metrics" || consumed {
		t.Fatalf("ReadStream = %v (consumed %v), want \"mirror: no metrics\" and no answer read", err, consumed)
	}
}
