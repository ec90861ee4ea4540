package apiban_test

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/source/apiban"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/apibansim"
)

// newSim starts a simulator without a rate limit unless opts set one.
func newSim(t *testing.T, opts apibansim.Options) *apibansim.Sim {
	t.Helper()
	if opts.MaxRequests == 0 {
		opts.MaxRequests = apibansim.Unlimited
	}
	if opts.MaxHang == 0 {
		opts.MaxHang = 5 * time.Second
	}
	s := apibansim.New(opts)
	t.Cleanup(s.Close)
	return s
}

// testConfig is a whole Config, as the configuration would hand it over:
// the client fills no operator setting itself.
func testConfig(baseURL, key, version string) apiban.Config {
	return apiban.Config{
		BaseURL:    baseURL,
		APIKey:     key,
		Version:    version,
		Set:        "sip",
		RateWindow: 2 * time.Minute,
		Timeout:    30 * time.Second,
		MaxPages:   400,
	}
}

// fastConfig points at sim with waits short enough for unit tests.
func fastConfig(sim *apibansim.Sim, version string) apiban.Config {
	cfg := testConfig(sim.URL(), sim.Key(), version)
	cfg.RateWindow = 50 * time.Millisecond
	cfg.Timeout = 2 * time.Second
	cfg.MaxRetries = 2
	cfg.BackoffBase = time.Millisecond
	cfg.BackoffMax = 4 * time.Millisecond
	return cfg
}

func newClient(t *testing.T, cfg apiban.Config, opts ...apiban.Option) *apiban.Client {
	t.Helper()
	c, err := apiban.New(cfg, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

// pull reads the feed from cursor to its end, as the bridge would.
func pull(t *testing.T, c *apiban.Client, cursor string) ([]netip.Prefix, string, int) {
	t.Helper()
	var all []netip.Prefix
	invalid := 0
	for range 10000 {
		b, err := c.Next(context.Background(), cursor)
		if err != nil {
			t.Fatalf("Next(%q): %v", cursor, err)
		}
		if b.Cursor == "" || b.Cursor == "none" {
			t.Fatalf("Next(%q) returned cursor %q", cursor, b.Cursor)
		}
		all = append(all, b.Prefixes...)
		invalid += b.Invalid
		cursor = b.Cursor
		if b.Last {
			return all, cursor, invalid
		}
	}
	t.Fatal("feed never ended")
	return nil, "", 0
}

// hostPrefixes is ips as the /32 prefixes the client should return.
func hostPrefixes(ips []string) []netip.Prefix {
	out := make([]netip.Prefix, len(ips))
	for i, ip := range ips {
		a := netip.MustParseAddr(ip)
		out[i] = netip.PrefixFrom(a, a.BitLen())
	}
	return out
}

func samePrefixes(t *testing.T, got, want []netip.Prefix) {
	t.Helper()
	got, want = slices.Clone(got), slices.Clone(want)
	slices.SortFunc(got, netip.Prefix.Compare)
	slices.SortFunc(want, netip.Prefix.Compare)
	if !slices.Equal(got, want) {
		t.Fatalf("got %d prefixes, want %d (first got %v, first want %v)", len(got), len(want), head(got), head(want))
	}
}

func head(p []netip.Prefix) []netip.Prefix { return p[:min(len(p), 3)] }

// fakeClock makes every wait instant and remembers it.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1700000000, 0)} }

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sleeps = append(f.sleeps, d)
	f.now = f.now.Add(d)
	return nil
}

func (f *fakeClock) Sleeps() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.sleeps)
}

// logCapture is a debug logger writing into a buffer.
type logCapture struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logCapture) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logCapture) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func newLogCapture() (*logCapture, *logrus.Logger) {
	lc := &logCapture{}
	l := logrus.New()
	l.SetOutput(lc)
	l.SetLevel(logrus.DebugLevel)
	return lc, l
}

// errorTree lists err and everything it wraps.
func errorTree(err error) []error {
	if err == nil {
		return nil
	}
	out := []error{err}
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		out = append(out, errorTree(u.Unwrap())...)
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			out = append(out, errorTree(e)...)
		}
	}
	return out
}

// classes lists which error classes err belongs to.
func classes(err error) []string {
	var out []string
	for name, class := range map[string]error{
		"unauthorized": apiban.ErrUnauthorized, "rate-limited": apiban.ErrRateLimited,
		"server": apiban.ErrServer, "bad-response": apiban.ErrBadResponse, "transport": apiban.ErrTransport,
	} {
		if errors.Is(err, class) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}
