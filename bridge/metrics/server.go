package metrics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Health is the JSON body of /healthz.
type Health struct {
	Status          string `json:"status"` // ok | unhealthy
	Reason          string `json:"reason,omitempty"`
	LastSuccess     string `json:"last_success,omitempty"` // RFC 3339
	LastSync        string `json:"last_sync,omitempty"`
	LastError       string `json:"last_error,omitempty"`
	LastErrorKind   string `json:"last_error_kind,omitempty"`
	ActiveDecisions int    `json:"active_decisions"`
	Cursor          string `json:"cursor,omitempty"`
	// PID lets `status` tell the daemon from another process that took
	// the port first: it must be the PID holding the state file's lock.
	PID int `json:"pid"`
}

// Check gives the health verdict: healthy while the last successful sync
// ended less than HealthFactor poll intervals ago. One failed sync is not
// enough to fail (the next retry may well succeed); a LAPI or APIBAN outage
// that outlasts a few polls is.
func (m *Metrics) Check() (Health, bool) {
	m.mu.Lock()
	h := m.health
	m.mu.Unlock()
	now := m.opts.Now()
	limit := time.Duration(m.opts.HealthFactor) * m.opts.PollInterval
	out := Health{Status: "ok", ActiveDecisions: h.active, Cursor: h.cursor, LastError: h.lastError, LastErrorKind: h.lastKind, PID: os.Getpid()}
	if !h.lastSuccess.IsZero() {
		out.LastSuccess = h.lastSuccess.UTC().Format(time.RFC3339)
	}
	if !h.lastSync.IsZero() {
		out.LastSync = h.lastSync.UTC().Format(time.RFC3339)
	}
	switch {
	case h.lastSuccess.IsZero() && h.lastSync.IsZero():
		out.Reason = fmt.Sprintf("no sync has finished yet (started %s ago)", now.Sub(h.started).Round(time.Second))
	case h.lastSuccess.IsZero():
		out.Reason = "no sync has succeeded yet: " + h.lastKind
	case now.Sub(h.lastSuccess) > limit:
		out.Reason = fmt.Sprintf("last successful sync %s ago, more than %s (%d poll intervals)",
			now.Sub(h.lastSuccess).Round(time.Second), limit, m.opts.HealthFactor)
	default:
		return out, true
	}
	out.Status = "unhealthy"
	return out, false
}

// Handler serves /metrics and /healthz.
func (m *Metrics) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		h, ok := m.Check()
		w.Header().Set("Content-Type", "application/json")
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = json.NewEncoder(w).Encode(h)
	})
	return mux
}

// Listen binds addr now, so that a port already in use is reported at
// start, and returns a function serving h (Metrics.Handler, or the
// bouncer-only daemon's own) until ctx ends, which drains the open
// requests for up to 5 s.
func Listen(addr string, h http.Handler) (net.Addr, func(ctx context.Context) error, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("prometheus listener: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	serve := func(ctx context.Context) error {
		stopped := make(chan struct{})
		go func() {
			defer close(stopped)
			<-ctx.Done()
			shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(shut)
		}()
		err := srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			<-stopped // Shutdown has drained the open requests
			return nil
		}
		return err
	}
	return ln.Addr(), serve, nil
}
