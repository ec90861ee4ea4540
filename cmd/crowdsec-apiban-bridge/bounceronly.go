package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"text/tabwriter"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/sirupsen/logrus"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bouncer"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bridge/metrics"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/config"
)

// Bouncer-only mode (apiban.enabled false): a PBX pulls LAPI's decisions
// into its kernel and nothing else. No sync engine, no machine login, no
// state file and so no state-file lock: many PBX hosts, one bridge
// elsewhere (docs/scale-out.md).

const bouncerOnlyMode = "bouncer only (apiban.enabled is false): no sync engine, no machine login, no state file"

// bouncerOnly runs what a bouncer-only configuration allows: the daemon,
// status and remove-firewall. The engine's commands are refused by name.
func bouncerOnly(ctx context.Context, f flags, cfg *config.Config, stdout io.Writer, log *logrus.Logger) int {
	switch {
	case f.command == cmdRemoveFirewall:
		return runCommand(ctx, f, cfg, stdout, log)
	case f.command == cmdStatus:
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		defer tw.Flush()
		row(tw, "mode", "%s", bouncerOnlyMode)
		row(tw, "bouncer LAPI", "%s", bouncerOptions(cfg, log).APIURL)
		bouncerRows(cfg, bouncerOnlyView(ctx, cfg, tw), tw)
		return 0
	case f.command != "" || f.once || f.dryRun || f.full:
		what := f.command
		if what == "" {
			what = "-once, -dry-run, -full"
		}
		log.Errorf("%s: refused: %s", what, bouncerOnlyMode)
		return 1
	}
	if err := runBouncerOnly(ctx, cfg, log); err != nil {
		log.WithError(err).Error("bouncer: stopped")
		return 1
	}
	return 0
}

// runBouncerOnly runs the embedded bouncer in the foreground until ctx
// ends. Unlike beside a sync engine, a bouncer that cannot start ends the
// process: it is all the process is for.
func runBouncerOnly(ctx context.Context, cfg *config.Config, log *logrus.Logger) error {
	if cfg.LogMode == "file" {
		file := logFile(cfg)
		defer file.Close()
		log.SetOutput(file)
		logrus.SetOutput(file)
	}
	l := log.WithField("component", "bouncer")
	l.WithField("version", version).Info("starting: " + bouncerOnlyMode)
	backend, err := newBackendLogged(cfg.Bouncer, l)
	if err != nil {
		return fmt.Errorf("cannot start: %w", err)
	}
	for _, line := range bouncer.DetectFirewallBouncer(ctx) {
		l.Warn(line)
	}
	opts := bouncerOptions(cfg, l)
	opts.NeverBan = neverBan(ctx, cfg, l)
	b := bouncer.New(backend, opts)
	if cfg.Prometheus.Enabled {
		_, stop := serveBouncerMetrics(ctx, cfg.Prometheus.Addr(), b.Collector(), l)
		defer stop()
	}
	n := newNotifier(os.Getenv)
	go n.watchdog(ctx, watchdogInterval(os.Getenv))
	n.send("READY=1\nSTATUS=" + bouncerOnlyMode)
	defer n.send("STOPPING=1")
	l.WithFields(logrus.Fields{"mode": cfg.Bouncer.Mode, "origins": originsField(cfg.Bouncer.Origins), "lapi_url": opts.APIURL}).Info("bouncer: starting")
	return b.Run(ctx)
}

// serveBouncerMetrics serves the bouncer's figures on /metrics and a
// plain /healthz (the process is up; there are no syncs to judge) on
// addr, and returns where (nil when it cannot listen) and a function that
// stops it. A listener that cannot open is logged: enforcing matters more.
func serveBouncerMetrics(ctx context.Context, addr string, c prometheus.Collector, l logrus.FieldLogger) (bound net.Addr, stop func()) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok: "+bouncerOnlyMode) })
	bound, serve, err := metrics.Listen(addr, mux)
	if err != nil {
		l.WithError(err).Error("metrics disabled")
		return nil, func() {}
	}
	l.WithField("addr", bound.String()).Info("serving /metrics and /healthz")
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := serve(ctx); err != nil {
			l.WithError(err).Error("metrics listener stopped")
		}
	}()
	return bound, func() { cancel(); <-done }
}
