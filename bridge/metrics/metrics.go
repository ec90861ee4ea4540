// Package metrics turns the bridge's sync reports into Prometheus metrics
// and a health verdict, and serves both over HTTP (/metrics, /healthz).
// Labels only ever hold fixed words (outcomes, reasons, error kinds), never
// addresses, URLs or secrets.
package metrics

import (
	"errors"
	"net/url"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bridge"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/source/apiban"
)

const namespace = "crowdsec_apiban_bridge"

// Error kinds, the values of the errors_total "kind" label.
const (
	KindAPIBANUnauthorized = "apiban_unauthorized"
	KindAPIBANRateLimited  = "apiban_rate_limited"
	KindAPIBANServer       = "apiban_server"
	KindAPIBANBadResponse  = "apiban_bad_response"
	KindAPIBANTransport    = "apiban_transport"
	KindLAPI               = "lapi"
	KindState              = "state"
	// KindFlood: the new-decisions cap tripped (decisions.max_new_per_sync).
	KindFlood = "flood"
)

// skipReasons are the values of the skipped_total "reason" label.
var skipReasons = []string{"allowlisted", "already_active", "invalid", "too_wide", "self"}

// Counters is what the feed client counts on its own (apiban.Client).
type Counters interface {
	Requests() int
	RateLimited() int
}

// Options describe the running bridge.
type Options struct {
	Version string
	// PollInterval and HealthFactor: /healthz fails once the last
	// successful sync is older than HealthFactor poll intervals.
	PollInterval time.Duration
	HealthFactor int
	Feed         Counters
	Now          func() time.Time
}

// Metrics holds the collectors and the health state. Observe is called from
// the sync loop, the handlers from HTTP goroutines.
type Metrics struct {
	reg  *prometheus.Registry
	opts Options

	syncs       *prometheus.CounterVec
	fetched     prometheus.Counter
	pushed      prometheus.Counter
	repaired    prometheus.Counter
	readBacks   prometheus.Counter
	skipped     *prometheus.CounterVec
	errs        *prometheus.CounterVec
	lastSuccess prometheus.Gauge
	lastSync    prometheus.Gauge
	duration    prometheus.Gauge
	active      prometheus.Gauge

	mu     sync.Mutex
	health health
}

// health is what /healthz reports.
type health struct {
	started     time.Time
	lastSync    time.Time
	lastSuccess time.Time
	lastError   string
	lastKind    string
	active      int
	cursor      string
}

// New registers every collector on a registry of its own, so that nothing
// a library registers globally is exposed by accident.
func New(opts Options) *Metrics {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.HealthFactor <= 0 {
		opts.HealthFactor = 3
	}
	m := &Metrics{reg: prometheus.NewRegistry(), opts: opts}
	m.health.started = opts.Now()
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help})
	}
	gauge := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Name: name, Help: help})
	}
	m.syncs = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "syncs_total",
		Help: "Syncs finished, by outcome (success, failure)."}, []string{"outcome"})
	m.fetched = counter("fetched_total", "Valid entries received from APIBAN.")
	m.pushed = counter("pushed_total", "Decisions pushed to LAPI.")
	m.repaired = counter("repaired_total", "Decisions LAPI had lost (flush, deletes, a new database) that were pushed again.")
	m.readBacks = counter("read_backs_total", "Syncs that read this origin's decisions back from LAPI (a loss found, a full sync, no state).")
	m.skipped = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "skipped_total",
		Help: "Entries not pushed, by reason (allowlisted, already_active, invalid, too_wide, self)."}, []string{"reason"})
	m.errs = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "errors_total",
		Help: "Failed syncs, by kind of error."}, []string{"kind"})
	m.lastSuccess = gauge("last_success_timestamp_seconds", "Unix time the last successful sync ended (0: none yet).")
	m.lastSync = gauge("last_sync_timestamp_seconds", "Unix time the last sync ended, whatever its outcome.")
	m.duration = gauge("last_sync_duration_seconds", "How long the last sync took.")
	m.active = gauge("active_decisions", "Decisions this bridge believes active in LAPI (from its state).")
	// Initialise every label value, so a rate() has a zero to start from.
	for _, o := range []string{"success", "failure"} {
		m.syncs.WithLabelValues(o)
	}
	for _, r := range skipReasons {
		m.skipped.WithLabelValues(r)
	}
	for _, k := range []string{KindAPIBANUnauthorized, KindAPIBANRateLimited, KindAPIBANServer,
		KindAPIBANBadResponse, KindAPIBANTransport, KindLAPI, KindState, KindFlood} {
		m.errs.WithLabelValues(k)
	}
	info := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Name: "build_info",
		Help: "Always 1; the version is a label.", ConstLabels: prometheus.Labels{"version": opts.Version}})
	info.Set(1)
	m.reg.MustRegister(m.syncs, m.fetched, m.pushed, m.repaired, m.readBacks, m.skipped, m.errs,
		m.lastSuccess, m.lastSync, m.duration, m.active, info,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if opts.Feed != nil {
		m.reg.MustRegister(
			prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: namespace, Name: "apiban_requests_total",
				Help: "HTTP requests sent to APIBAN, retries included."}, func() float64 { return float64(opts.Feed.Requests()) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: namespace, Name: "apiban_rate_limited_total",
				Help: "HTTP 429 answers received from APIBAN."}, func() float64 { return float64(opts.Feed.RateLimited()) }))
	}
	return m
}

// Registry exposes the registry, for tests and extra collectors (the
// embedded bouncer may add its own).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Observe records one finished sync; active is the number of decisions the
// state holds after it.
func (m *Metrics) Observe(rep bridge.Report, err error, active int) {
	now := m.opts.Now()
	m.fetched.Add(float64(rep.Fetched))
	m.pushed.Add(float64(rep.Pushed))
	m.repaired.Add(float64(rep.Repaired))
	if rep.ReadBack != "" {
		m.readBacks.Inc()
	}
	m.skipped.WithLabelValues("allowlisted").Add(float64(rep.Allowlisted))
	m.skipped.WithLabelValues("already_active").Add(float64(rep.AlreadyActive))
	m.skipped.WithLabelValues("invalid").Add(float64(rep.Invalid))
	m.skipped.WithLabelValues("too_wide").Add(float64(rep.TooWide))
	m.skipped.WithLabelValues("self").Add(float64(rep.Self))
	m.lastSync.Set(float64(now.Unix()))
	m.duration.Set(rep.Duration.Seconds())
	m.active.Set(float64(active))

	m.mu.Lock()
	defer m.mu.Unlock()
	m.health.lastSync, m.health.active, m.health.cursor = now, active, rep.Cursor
	if err != nil {
		kind := Kind(err)
		m.syncs.WithLabelValues("failure").Inc()
		m.errs.WithLabelValues(kind).Inc()
		m.health.lastError, m.health.lastKind = err.Error(), kind
		return
	}
	m.syncs.WithLabelValues("success").Inc()
	m.lastSuccess.Set(float64(now.Unix()))
	m.health.lastSuccess, m.health.lastError, m.health.lastKind = now, "", ""
}

// LAPIError marks an error as coming from LAPI; cmd wraps the LAPI client
// with it so that Kind can tell LAPI failures from state-file ones.
type LAPIError struct{ Err error }

func (e *LAPIError) Error() string { return e.Err.Error() }
func (e *LAPIError) Unwrap() error { return e.Err }

// Kind classifies a sync error for the errors_total label.
func Kind(err error) string {
	classes := []struct {
		class error
		kind  string
	}{
		{apiban.ErrUnauthorized, KindAPIBANUnauthorized},
		{apiban.ErrRateLimited, KindAPIBANRateLimited},
		{apiban.ErrServer, KindAPIBANServer},
		{apiban.ErrBadResponse, KindAPIBANBadResponse},
		{apiban.ErrTransport, KindAPIBANTransport},
	}
	if errors.Is(err, bridge.ErrFlood) {
		return KindFlood
	}
	for _, c := range classes {
		if errors.Is(err, c.class) {
			return c.kind
		}
	}
	var lerr *LAPIError
	var uerr *url.Error
	if errors.As(err, &lerr) || errors.As(err, &uerr) {
		return KindLAPI
	}
	// What is left of a sync's errors is the state file and its marker.
	return KindState
}
