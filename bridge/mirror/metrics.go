package mirror

import (
	"strconv"

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

func (m *Metrics) request(ep string, code int) {
	if m != nil {
		m.requests.WithLabelValues(ep, strconv.Itoa(code)).Inc()
	}
}

func (m *Metrics) client(name string) {
	if m != nil {
		m.clients.WithLabelValues(name).Inc()
	}
}

func (m *Metrics) served(n int) {
	if m != nil {
		m.entries.Add(float64(n))
	}
}
