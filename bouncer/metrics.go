package bouncer

import (
	"context"
	"sync"
	"time"

	"github.com/crowdsecurity/crowdsec/pkg/models"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/source/neverban"
)

const metricsNamespace = "crowdsec_apiban_bridge_bouncer"

var (
	descActive = prometheus.NewDesc(metricsNamespace+"_active_decisions",
		"Active ban decisions the bouncer enforces, by origin.", []string{"origin"}, nil)
	descElements = prometheus.NewDesc(metricsNamespace+"_kernel_elements",
		"Addresses and ranges in the kernel sets.", nil, nil)
	descSkipped = prometheus.NewDesc(metricsNamespace+"_skipped_decisions_total",
		"Decisions never enforced, each counted once, by reason: special, self, lapi, gateway, resolver, allowlist, too-wide (never banned), not-ban, scope, malformed, expired.",
		[]string{"reason"}, nil)
	descPackets = prometheus.NewDesc(metricsNamespace+"_dropped_packets_total",
		"Packets dropped by the bouncer's rules since the bridge started, by origin and IP type (kernel counters, carried over rebuilds of the objects).",
		[]string{"origin", "ip_type"}, nil)
	descBytes = prometheus.NewDesc(metricsNamespace+"_dropped_bytes_total",
		"Bytes dropped by the bouncer's rules, by origin and IP type (kernel counters).", []string{"origin", "ip_type"}, nil)
	descResyncs = prometheus.NewDesc(metricsNamespace+"_resyncs_total",
		"Periodic full pulls of LAPI's active list (bouncer.resync_interval) applied as a rebuild.", nil, nil)
	descResyncAdded = prometheus.NewDesc(metricsNamespace+"_resync_added_total",
		"Addresses and ranges a resync added: decisions LAPI held that the stream had not delivered.", nil, nil)
	descResyncRemoved = prometheus.NewDesc(metricsNamespace+"_resync_removed_total",
		"Addresses and ranges a resync removed: decisions LAPI no longer held but never reported deleted.", nil, nil)
)

// SkipReasons are the reasons a decision is not enforced, each exported
// (from zero) as a label of the skipped counter.
var SkipReasons = []string{
	neverban.ReasonSpecial, neverban.ReasonSelf, neverban.ReasonLAPI, neverban.ReasonGateway, neverban.ReasonResolver,
	neverban.ReasonAllowlist, neverban.ReasonTooWide, "not-ban", "scope", "malformed", "expired",
}

// Collector returns a Prometheus collector of the bouncer's state; the
// kernel counters are read at each scrape.
func (b *Bouncer) Collector() prometheus.Collector { return collector{b} }

type collector struct{ b *Bouncer }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descActive, descElements, descSkipped, descPackets, descBytes, descResyncs, descResyncAdded, descResyncRemoved} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	s := c.b.Stats()
	for origin, n := range s.ByOrigin {
		ch <- prometheus.MustNewConstMetric(descActive, prometheus.GaugeValue, float64(n), origin)
	}
	ch <- prometheus.MustNewConstMetric(descElements, prometheus.GaugeValue, float64(s.Elements))
	ch <- prometheus.MustNewConstMetric(descResyncs, prometheus.CounterValue, float64(s.Resyncs))
	ch <- prometheus.MustNewConstMetric(descResyncAdded, prometheus.CounterValue, float64(s.ResyncAdded))
	ch <- prometheus.MustNewConstMetric(descResyncRemoved, prometheus.CounterValue, float64(s.ResyncRemoved))
	for _, reason := range SkipReasons {
		ch <- prometheus.MustNewConstMetric(descSkipped, prometheus.CounterValue, float64(s.SkippedBy[reason]), reason)
	}
	dropped, _ := c.b.dropped()
	for k, d := range dropped {
		// Labels read back from the kernel: a bad one is skipped, never
		// a panic in the scrape (the registry would not recover it).
		for desc, v := range map[*prometheus.Desc]uint64{descPackets: d.Packets, descBytes: d.Bytes} {
			m, err := prometheus.NewConstMetric(desc, prometheus.CounterValue, float64(v), k.Origin, k.IPType)
			if err != nil {
				c.b.log.WithError(err).Debug("bouncer: drop counter not exported")
				continue
			}
			ch <- m
		}
	}
}

// dropped is what the bouncer's rules dropped since it started: the
// kernel counters plus what they held before each rebuild.
func (b *Bouncer) dropped() (map[DropKey]Counters, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d, ok := b.readCounters(ctx)
	if !ok {
		return nil, false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for k, c := range b.banked {
		d[k] = d[k].Plus(c)
	}
	return d, true
}

// readCounters reads the backend's counters, if it has any.
func (b *Bouncer) readCounters(ctx context.Context) (map[DropKey]Counters, bool) {
	r, ok := b.backend.(CounterReader)
	if !ok {
		return nil, false
	}
	d, err := r.Dropped(ctx)
	if err != nil {
		b.log.WithError(err).Debug("bouncer: cannot read the drop counters")
		return nil, false
	}
	return d, true
}

// countersBeforeRebuild reads the counters a rebuild is about to reset,
// when the objects are this process's (not a previous run's leftovers).
func (b *Bouncer) countersBeforeRebuild(ctx context.Context) map[DropKey]Counters {
	b.mu.Lock()
	loaded := b.loaded
	b.mu.Unlock()
	if !loaded {
		return nil
	}
	d, _ := b.readCounters(ctx)
	return d
}

// bank keeps, after a successful rebuild, what the old rules had counted.
// (Packets dropped between the read and the rebuild are lost: a few at
// most.)
func (b *Bouncer) bank(before map[DropKey]Counters) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.loaded = true
	if b.banked == nil {
		b.banked = map[DropKey]Counters{}
	}
	for k, c := range before {
		b.banked[k] = b.banked[k].Plus(c)
	}
}

// usage fills the usage metrics sent to LAPI (go-cs-bouncer's
// MetricsProvider): active decisions by origin, and what was dropped
// since the last report by origin and IP type.
type usage struct {
	b    *Bouncer
	mu   sync.Mutex
	last map[DropKey]Counters
}

func (u *usage) update(m *models.RemediationComponentsMetrics, interval time.Duration) {
	now, window := time.Now().Unix(), int64(interval.Seconds())
	var items []*models.MetricsDetailItem
	for origin, n := range u.b.Stats().ByOrigin {
		items = append(items, metricItem("active_decisions", "ip", float64(n), models.MetricsLabels{"origin": origin}))
	}
	if dropped, ok := u.b.dropped(); ok {
		for k, d := range u.since(dropped) {
			labels := models.MetricsLabels{"origin": k.Origin, "ip_type": k.IPType}
			items = append(items, metricItem("dropped", "packet", float64(d.Packets), labels),
				metricItem("dropped", "byte", float64(d.Bytes), labels))
		}
	}
	m.Metrics = append(m.Metrics, &models.DetailedMetrics{
		Meta:  &models.MetricsMeta{UtcNowTimestamp: &now, WindowSizeSeconds: &window},
		Items: items,
	})
}

// since returns what each counter gained since the last report and
// remembers the new values. The counters run on across rebuilds (see
// dropped); one below its last value was reset all the same (a rebuild
// whose old counters could not be read): all of it is new.
func (u *usage) since(now map[DropKey]Counters) map[DropKey]Counters {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := make(map[DropKey]Counters, len(now))
	for k, d := range now {
		last := u.last[k]
		if d.Packets >= last.Packets && d.Bytes >= last.Bytes {
			d = Counters{Packets: d.Packets - last.Packets, Bytes: d.Bytes - last.Bytes}
		}
		out[k] = d
	}
	u.last = now
	return out
}

func metricItem(name, unit string, v float64, labels models.MetricsLabels) *models.MetricsDetailItem {
	return &models.MetricsDetailItem{Name: &name, Unit: &unit, Value: &v, Labels: labels}
}
