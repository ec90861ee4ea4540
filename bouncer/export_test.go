package bouncer

import (
	"context"
	"time"

	"github.com/crowdsecurity/crowdsec/pkg/models"
)

// What the external tests (package bouncer_test, which share the fake
// kernel of bouncer/bouncertest) drive directly.

// MetricsNamespace prefixes the bouncer's Prometheus metrics.
const MetricsNamespace = metricsNamespace

// Tick applies one stream answer, as Run does.
func (b *Bouncer) Tick(ctx context.Context, resp *models.DecisionsStreamResponse, full bool) bool {
	return b.tick(ctx, resp, full)
}

// Usage is the usage-metrics report for LAPI.
type Usage struct{ u *usage }

// NewUsage starts the usage reports of b.
func NewUsage(b *Bouncer) *Usage { return &Usage{&usage{b: b}} }

// Update fills m with what changed since the previous report.
func (u *Usage) Update(m *models.RemediationComponentsMetrics, interval time.Duration) {
	u.u.update(m, interval)
}

// Dropped is the drop counters since start, across rebuilds.
func (b *Bouncer) Dropped() (map[DropKey]Counters, bool) { return b.dropped() }

// SkipMarks is how many skipped decisions the bouncer remembers having
// logged.
func (b *Bouncer) SkipMarks() int { return len(b.skipped) }
