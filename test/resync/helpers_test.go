package resynctest

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bouncer"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bouncer/bouncertest"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bridge/lapi"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bridge/mirror"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/bridgetest"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/lapitest"
)

const (
	machine  = "crowdsec-apiban-bridge"
	password = "Resync-machine-pw-1f2e3d4c5b6a"
	// resync is short so that the tests wait seconds, not an hour.
	resync = 3 * time.Second
	// clientKey is the mirror's client key.
	clientKey = "Resync-client-key-9a8b7c6d"
)

// needLAPI skips under -short, as the other real-LAPI tests do.
func needLAPI(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("runs a real LAPI")
	}
}

// push adds prefixes as the bridge does (one alert, origin apiban) with
// a fresh client: a new database forgets the old one's session.
func push(t *testing.T, l *lapitest.LAPI, prefixes ...string) {
	t.Helper()
	c, err := lapi.New(lapi.Options{URL: l.URL, Login: machine, Password: password,
		UserAgent: "crowdsec-apiban-bridge/test", Origin: "apiban", Scenario: "apiban/sip-blocklist", Type: "ban",
		Timeout: 30 * time.Second, BatchSize: 250, Message: "resync test"})
	if err != nil {
		t.Fatal(err)
	}
	ds := make([]lapi.Decision, len(prefixes))
	for i, p := range prefixes {
		ds[i] = lapi.Decision{Prefix: netip.MustParsePrefix(p), Duration: 4 * time.Hour}
	}
	if _, err := c.Push(context.Background(), ds, time.Now()); err != nil {
		t.Fatal(err)
	}
}

// addBouncer registers a bouncer key with cscli.
func addBouncer(t *testing.T, l *lapitest.LAPI, name, key string) {
	t.Helper()
	l.Cscli(t, "bouncers", "add", name, "-k", key)
}

// reader is one embedded bouncer on the fake kernel, run as the daemon
// runs it (bouncer.New then Run).
type reader struct {
	b   *bouncer.Bouncer
	rec *bouncertest.Recorder
	log *bridgetest.Buffer
}

func startBouncer(t *testing.T, l *lapitest.LAPI, key string, every time.Duration) *reader {
	t.Helper()
	r := &reader{rec: bouncertest.NewRecorder(true), log: &bridgetest.Buffer{}}
	logger := logrus.New()
	logger.SetOutput(r.log)
	r.b = bouncer.New(r.rec, bouncer.Options{
		StreamOptions: bouncer.StreamOptions{APIURL: l.URL, APIKey: key, UpdateFrequency: 200 * time.Millisecond, UserAgent: "resync-test/1"},
		Resync:        every, Log: logger, KeepOnExit: true})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.b.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("bouncer.Run: %v", err)
		}
		if t.Failed() {
			t.Logf("bouncer log (resync %s):\n%s", every, r.log.String())
		}
		if strings.Contains(r.log.String(), key) {
			t.Error("the bouncer key reached its log")
		}
	})
	return r
}

// holds says whether the fake kernel holds every one of ps.
func (r *reader) holds(ps ...string) bool {
	for _, p := range ps {
		if !r.rec.Has(netip.MustParsePrefix(p)) {
			return false
		}
	}
	return true
}

// holdsNone says whether the fake kernel holds none of ps.
func (r *reader) holdsNone(ps ...string) bool {
	for _, p := range ps {
		if r.rec.Has(netip.MustParsePrefix(p)) {
			return false
		}
	}
	return true
}

// startMirror serves a mirror fed by LAPI's stream with its own key and
// returns its /ipset list URL.
func startMirror(t *testing.T, l *lapitest.LAPI, key string) (list string, set *mirror.Set, log *bridgetest.Buffer) {
	t.Helper()
	set, log = mirror.NewSet(nil), &bridgetest.Buffer{}
	logger := logrus.New()
	logger.SetOutput(log)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- mirror.Stream(ctx, set, bouncer.StreamOptions{APIURL: l.URL, APIKey: key,
			UpdateFrequency: 200 * time.Millisecond, UserAgent: "resync-test-mirror/1"}, resync, logger)
	}()
	srv := httptest.NewServer(mirror.NewHandler(set, mirror.Options{Keys: []mirror.Key{{Name: "pbx", Key: clientKey}}}))
	t.Cleanup(func() {
		srv.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("mirror.Stream: %v", err)
		}
		if t.Failed() {
			t.Logf("mirror log:\n%s", log.String())
		}
	})
	return srv.URL + "/ipset/" + clientKey + "/list", set, log
}

// listed reads the mirror's /ipset list as a set of lines.
func listed(t *testing.T, url string) map[string]bool {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	if resp.StatusCode != http.StatusOK {
		return out // not ready yet
	}
	for _, line := range strings.Fields(string(body)) {
		out[line] = true
	}
	return out
}

func lists(m map[string]bool, vs ...string) (all, none bool) {
	all, none = true, true
	for _, v := range vs {
		all = all && m[v]
		none = none && !m[v]
	}
	return all, none
}
