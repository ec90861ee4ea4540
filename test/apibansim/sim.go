// Package apibansim is an in-process APIBAN server for tests: both API
// versions, cursor paging, every end-of-list form seen in the wild, a
// per-key rate limit and queued faults. It follows
// shared/reference/apiban-api.md; where that leaves a choice open the
// choice is written next to the code.
package apibansim

import (
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"
)

// Defaults of Options; they mirror the real service.
const (
	DefaultKey           = "sim-key"
	DefaultMaxRequests   = 11
	DefaultRateWindow    = 2 * time.Minute
	DefaultPageSize      = 250
	DefaultStartID       = 1700000000
	DefaultMaxHang       = 30 * time.Second
	DefaultOversizeBytes = 10 << 20
)

// Unlimited as Options.MaxRequests turns the rate limit off.
const Unlimited = -1

// Options shape a Sim. The zero value is the documented service.
type Options struct {
	// Key is the only API key accepted; "" means DefaultKey.
	Key string
	// EndForm is how "nothing after this cursor" is answered.
	EndForm EndForm
	// MaxRequests per RateWindow per key before 429; 0 means
	// DefaultMaxRequests, Unlimited means no limit.
	MaxRequests int
	// RateWindow is the sliding window of the limit; 0 means 2 minutes.
	RateWindow time.Duration
	// PageSize caps entries per reply; 0 means 250.
	PageSize int
	// StartID is the ID of the first entry added; 0 means 1700000000.
	// It must be above 100, so that the start cursors "0" and "100"
	// come before every entry.
	StartID int64
	// MaxHang bounds FaultHang; 0 means 30 seconds.
	MaxHang time.Duration
	// OversizeBytes is the body size of FaultOversized; 0 means 10 MiB.
	OversizeBytes int
	// OverlongEntries is the length of the page of FaultOverlong; 0
	// means DefaultOverlongEntries.
	OverlongEntries int
	// Listener, when set, is served instead of a fresh 127.0.0.1 port.
	// The Sim owns it from then on.
	Listener net.Listener
}

func (o Options) withDefaults() Options {
	if o.Key == "" {
		o.Key = DefaultKey
	}
	if o.MaxRequests == 0 {
		o.MaxRequests = DefaultMaxRequests
	}
	if o.RateWindow <= 0 {
		o.RateWindow = DefaultRateWindow
	}
	if o.PageSize <= 0 {
		o.PageSize = DefaultPageSize
	}
	if o.StartID == 0 {
		o.StartID = DefaultStartID
	}
	if o.StartID <= 100 {
		panic("apibansim: Options.StartID must be above 100")
	}
	if o.MaxHang <= 0 {
		o.MaxHang = DefaultMaxHang
	}
	if o.OversizeBytes <= 0 {
		o.OversizeBytes = DefaultOversizeBytes
	}
	if o.OverlongEntries <= 0 {
		o.OverlongEntries = DefaultOverlongEntries
	}
	return o
}

// Sim is a running simulator. All methods are safe for concurrent use.
type Sim struct {
	key      string
	pageSize int
	maxHang  time.Duration
	oversize int
	overlong int
	srv      *httptest.Server
	mux      *http.ServeMux
	// closing releases hanging requests so Close does not wait on them.
	closing   chan struct{}
	closeOnce sync.Once

	mu      sync.Mutex // guards everything below
	list    *list
	endForm EndForm
	limiter *limiter
	faults  []Fault
	hostile hostile
	stats   Stats
}

// New starts a simulator. Close it when done. It panics on a StartID of
// 100 or less, a mistake in the test that calls it.
func New(opts Options) *Sim {
	opts = opts.withDefaults()
	s := &Sim{
		key:      opts.Key,
		pageSize: opts.PageSize,
		maxHang:  opts.MaxHang,
		oversize: opts.OversizeBytes,
		overlong: opts.OverlongEntries,
		closing:  make(chan struct{}),
		list:     newList(opts.StartID),
		endForm:  opts.EndForm,
		limiter:  newLimiter(opts.MaxRequests, opts.RateWindow),
		stats:    newStats(),
	}
	s.mux = s.routes()
	s.srv = httptest.NewUnstartedServer(s)
	if opts.Listener != nil {
		// The documented way to serve httptest on a chosen listener.
		_ = s.srv.Listener.Close()
		s.srv.Listener = opts.Listener
	}
	s.srv.Start()
	return s
}

// URL is the base URL, e.g. http://127.0.0.1:PORT, to use as the
// client's base URL.
func (s *Sim) URL() string { return s.srv.URL }

// Addr is the host:port being served.
func (s *Sim) Addr() string { return s.srv.Listener.Addr().String() }

// Key is the accepted API key.
func (s *Sim) Key() string { return s.key }

// Close releases hanging requests and stops the server.
func (s *Sim) Close() {
	s.closeOnce.Do(func() {
		close(s.closing)
		s.srv.Close()
	})
}

// SetEndForm changes how the end of the list is answered from now on.
func (s *Sim) SetEndForm(f EndForm) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.endForm = f
}

// SetRateLimit changes the limit from now on and forgets past requests.
// maxRequests follows Options.MaxRequests.
func (s *Sim) SetRateLimit(maxRequests int, window time.Duration) {
	o := Options{MaxRequests: maxRequests, RateWindow: window}.withDefaults()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limiter = newLimiter(o.MaxRequests, o.RateWindow)
}
