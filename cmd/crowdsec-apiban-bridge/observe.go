package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/sirupsen/logrus"
	"gopkg.in/natefinch/lumberjack.v2"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bridge"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bridge/allowlist"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bridge/lapi"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bridge/metrics"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/config"
)

// observer is the daemon's outward face: metrics and health over HTTP,
// sd_notify, and the log file.
type observer struct {
	m      *metrics.Metrics // nil when prometheus.enabled is false
	notify notifier
	log    *logrus.Logger
	stop   context.CancelFunc
	done   chan struct{}
	file   *lumberjack.Logger // nil unless log_mode is file
}

// startObserver opens the log file (log_mode file), starts the metrics
// listener and tells systemd the bridge is ready. Neither a log file nor a
// listener that cannot be opened stops the bridge: syncing matters more,
// and the error is logged where logs still go.
func startObserver(ctx context.Context, es []*bridge.Engine, cfg *config.Config, log *logrus.Logger) *observer {
	ctx, cancel := context.WithCancel(ctx)
	o := &observer{notify: newNotifier(os.Getenv), log: log, stop: cancel, done: make(chan struct{})}
	if cfg.LogMode == "file" {
		o.file = logFile(cfg)
		log.SetOutput(o.file)
		logrus.SetOutput(o.file)
	}
	serving := false
	if cfg.Prometheus.Enabled {
		o.m = metrics.New(metrics.Options{
			Version: version, PollInterval: cfg.APIBAN.PollInterval, Feed: feedCounters(es),
		})
		addr := cfg.Prometheus.Addr()
		bound, serve, err := metrics.Listen(addr, o.m.Handler())
		if err != nil {
			log.WithError(err).Error("metrics and health disabled")
		} else {
			log.WithField("addr", bound.String()).Info("serving /metrics and /healthz")
			serving = true
			go o.serve(ctx, serve)
		}
	}
	if !serving {
		close(o.done)
	}
	go o.notify.watchdog(ctx, watchdogInterval(os.Getenv))
	o.notify.send("READY=1\nSTATUS=first sync running")
	return o
}

func (o *observer) serve(ctx context.Context, serve func(context.Context) error) {
	defer close(o.done)
	if err := serve(ctx); err != nil {
		o.log.WithError(err).Error("metrics listener stopped")
	}
}

// observe is called after every set's sync; the active count is every
// set's.
func (o *observer) observe(es []*bridge.Engine, rep bridge.Report, err error) {
	active := 0
	for _, e := range es {
		active += e.ActiveCount()
	}
	if o.m != nil {
		o.m.Observe(rep, err, active)
	}
	status := fmt.Sprintf("STATUS=last sync ok at %s: pushed %d, %d active", time.Now().UTC().Format(time.RFC3339), rep.Pushed, active)
	if err != nil {
		status = fmt.Sprintf("STATUS=last sync failed at %s (%s)", time.Now().UTC().Format(time.RFC3339), metrics.Kind(err))
	}
	o.notify.send(status)
}

// close tells systemd the bridge is stopping and waits for the listener.
func (o *observer) close() {
	o.notify.send("STOPPING=1")
	o.stop()
	select {
	case <-o.done:
	case <-time.After(10 * time.Second):
	}
	if o.file != nil {
		_ = o.file.Close() // lumberjack reopens it if something logs later
	}
}

// feedCounters sums the requests of the engines' sources that count them
// (one per set); nil when none does.
func feedCounters(es []*bridge.Engine) metrics.Counters {
	var cs sumCounters
	for _, e := range es {
		if c, ok := e.Source().(metrics.Counters); ok {
			cs = append(cs, c)
		}
	}
	if len(cs) == 0 {
		return nil
	}
	return cs
}

type sumCounters []metrics.Counters

func (s sumCounters) Requests() (n int) {
	for _, c := range s {
		n += c.Requests()
	}
	return n
}

func (s sumCounters) RateLimited() (n int) {
	for _, c := range s {
		n += c.RateLimited()
	}
	return n
}

// logFile is the rotated log file of log_mode file, named like the other
// CrowdSec components' (crowdsec-firewall-bouncer.log in the same dir).
func logFile(cfg *config.Config) *lumberjack.Logger {
	return &lumberjack.Logger{
		Filename:   filepath.Join(cfg.LogDir, name+".log"),
		MaxSize:    cfg.LogMaxSize,
		MaxBackups: cfg.LogMaxBackups,
		MaxAge:     cfg.LogMaxAge,
		Compress:   cfg.LogCompress,
	}
}

// kindLAPI marks the LAPI client's errors so that metrics.Kind can tell
// them from state-file errors; errors.Is still sees what they wrap.
type kindLAPI struct{ bridge.LAPI }

func (k kindLAPI) Push(ctx context.Context, ds []lapi.Decision, now time.Time) (map[int64]time.Time, error) {
	a, err := k.LAPI.Push(ctx, ds, now)
	return a, markLAPI(err)
}

func (k kindLAPI) Active(ctx context.Context, now time.Time) (lapi.Holdings, error) {
	h, err := k.LAPI.Active(ctx, now)
	return h, markLAPI(err)
}

func (k kindLAPI) Edge(ctx context.Context, newest bool) (int64, bool, error) {
	id, found, err := k.LAPI.Edge(ctx, newest)
	return id, found, markLAPI(err)
}

func (k kindLAPI) Allowlists(ctx context.Context, now time.Time) ([]allowlist.Entry, error) {
	a, err := k.LAPI.Allowlists(ctx, now)
	return a, markLAPI(err)
}

func markLAPI(err error) error {
	if err == nil {
		return nil
	}
	return &metrics.LAPIError{Err: err}
}
