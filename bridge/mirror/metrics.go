package mirror

import (
	"slices"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

const metricsNamespace = "crowdsec_apiban_bridge_mirror"

// Metrics are the mirror's collectors: requests by endpoint and answer,
// entries served, requests by client key name (never the key), and the
// served set's size. A nil *Metrics records nothing.
type Metrics struct {
	requests *prometheus.CounterVec
	clients  *prometheus.CounterVec
	entries  prometheus.Counter
	size     prometheus.GaugeFunc
	resyncs  []prometheus.Collector
}

// NewMetrics returns the collectors; size reads the served set's size.
func NewMetrics(set *Set) *Metrics {
	return &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: metricsNamespace, Name: "requests_total",
			Help: "Requests to the APIBAN-compatible mirror by endpoint and status code."}, []string{"endpoint", "code"}),
		clients: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: metricsNamespace, Name: "client_requests_total",
			Help: "Requests with a known key, by the key's name."}, []string{"client"}),
		entries: prometheus.NewCounter(prometheus.CounterOpts{Namespace: metricsNamespace, Name: "entries_served_total",
			Help: "Addresses and ranges sent in list answers."}),
		size: prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: metricsNamespace, Name: "set_size",
			Help: "Addresses and ranges the mirror serves."}, func() float64 { return float64(set.Len()) }),
		resyncs: []prometheus.Collector{
			prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: metricsNamespace, Name: "resyncs_total",
				Help: "Periodic full pulls of LAPI's active list (mirror.resync_interval) that replaced the set."},
				func() float64 { return float64(set.Resyncs().Count) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: metricsNamespace, Name: "resync_added_total",
				Help: "Addresses and ranges a resync added: decisions LAPI held that the stream had not delivered."},
				func() float64 { return float64(set.Resyncs().Added) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: metricsNamespace, Name: "resync_removed_total",
				Help: "Addresses and ranges a resync removed: decisions LAPI no longer held but never reported deleted."},
				func() float64 { return float64(set.Resyncs().Removed) }),
		},
	}
}

// Collectors lists them for a registry.
func (m *Metrics) Collectors() []prometheus.Collector {
	return append([]prometheus.Collector{m.requests, m.clients, m.entries, m.size}, m.resyncs...)
}

// Endpoints, as metrics label them.
type endpoint uint8

const (
	epV1Banned endpoint = iota
	epV1Check
	epV2Get
	epV2Check
	epIPSet
	epOther
	numEndpoints
)

var endpointNames = [numEndpoints]string{"v1_banned", "v1_check", "v2_get", "v2_check", "ipset_list", "other"}

// answerCodes are the statuses the handler answers with.
var answerCodes = [...]int{200, 400, 403, 404, 429, 503}

// handlerMetrics is what one Handler records, each counter looked up in
// its vector once rather than per request. A series still appears only
// once counted, as with a lookup per request. A nil one records nothing.
type handlerMetrics struct {
	m        *Metrics
	requests [numEndpoints][len(answerCodes)]lazyCounter
	clients  []lazyCounter // by index in the handler's keys
	names    []string
}

type lazyCounter struct {
	once sync.Once
	c    prometheus.Counter
}

func (l *lazyCounter) inc(vec *prometheus.CounterVec, labels func() []string) {
	l.once.Do(func() { l.c = vec.WithLabelValues(labels()...) })
	l.c.Inc()
}

func (m *Metrics) forHandler(keys []Key) *handlerMetrics {
	if m == nil {
		return nil
	}
	hm := &handlerMetrics{m: m, clients: make([]lazyCounter, len(keys))}
	for _, k := range keys {
		hm.names = append(hm.names, k.Name)
	}
	return hm
}

func (hm *handlerMetrics) request(ep endpoint, code int) {
	if hm == nil {
		return
	}
	labels := func() []string { return []string{endpointNames[ep], strconv.Itoa(code)} }
	if i := slices.Index(answerCodes[:], code); i >= 0 {
		hm.requests[ep][i].inc(hm.m.requests, labels)
		return
	}
	hm.m.requests.WithLabelValues(labels()...).Inc()
}

// client counts a request with the key at index i of the handler's keys.
func (hm *handlerMetrics) client(i int) {
	if hm != nil {
		hm.clients[i].inc(hm.m.clients, func() []string { return []string{hm.names[i]} })
	}
}

func (hm *handlerMetrics) served(n int) {
	if hm != nil {
		hm.m.entries.Add(float64(n))
	}
}
