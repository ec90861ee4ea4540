package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bridge"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bridge/state"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/config"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/source/apiban"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/source/neverban"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const name = "crowdsec-apiban-bridge"

type flags struct {
	configPath string
	testOnly   bool
	version    bool
	once       bool
	dryRun     bool
	full       bool
	// command and args: a subcommand (status, check IP, flush, sync)
	// and its arguments; see commands.go.
	command string
	args    []string
}

func parseFlags(args []string, stderr io.Writer) (flags, error) {
	var f flags
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.configPath, "c", config.DefaultPath, "configuration `file`")
	fs.BoolVar(&f.testOnly, "t", false, "test the configuration and exit")
	fs.BoolVar(&f.version, "V", false, "print the version and exit")
	fs.BoolVar(&f.version, "version", false, "print the version and exit")
	fs.BoolVar(&f.once, "once", false, "sync once to the end of the feed and exit (non-zero on failure)")
	fs.BoolVar(&f.dryRun, "dry-run", false, "fetch and filter, print what would be pushed, write nothing (implies -once)")
	fs.BoolVar(&f.full, "full", false, "start this sync from the beginning of the feed")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	if fs.NArg() > 0 {
		// Flags may follow the subcommand too: `status -c FILE`.
		f.command = fs.Arg(0)
		if err := fs.Parse(fs.Args()[1:]); err != nil {
			return f, err
		}
		f.args = fs.Args()
	}
	return f, checkCommand(&f)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, err)
		return 2
	}
	if f.version {
		fmt.Fprintf(stdout, "%s %s\n", name, version)
		return 0
	}
	cfg, err := config.Load(f.configPath)
	if err == nil {
		err = checkPlatform(cfg) // backend_linux.go, backend_other.go
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	log := newLogger(cfg, stderr)
	for _, w := range cfg.Warnings {
		log.Warn(w)
	}
	if f.testOnly {
		fmt.Fprintf(stdout, "%s: configuration OK\n", f.configPath)
		return 0
	}
	if !cfg.APIBAN.Enabled {
		return bouncerOnly(ctx, f, cfg, stdout, log) // bounceronly.go
	}
	if f.command != "" && f.command != cmdSync {
		return runCommand(ctx, f, cfg, stdout, log)
	}
	if !f.dryRun {
		// One engine per state file (one per set); a dry run writes
		// nothing, so it may run beside the daemon.
		for _, feed := range cfg.Feeds() {
			lock, err := state.Acquire(feed.StateFile)
			if err != nil {
				log.WithError(err).Error("cannot start")
				return 1
			}
			defer lock.Release()
		}
	}
	// Read once: the host's addresses, gateways and resolvers, and the
	// LAPI host's (a DNS lookup), for the engines, the bouncer and the
	// mirror alike.
	never := neverBan(ctx, cfg, log)
	engines, err := wire(ctx, cfg, never, f.dryRun, log)
	if err != nil {
		log.WithError(err).Error("cannot start")
		return 1
	}
	if f.once || f.dryRun {
		return syncOnce(ctx, engines, f, stdout, log)
	}
	daemon(ctx, engines, cfg, never, f.full, log)
	return 0
}

func newLogger(cfg *config.Config, out io.Writer) *logrus.Logger {
	log := logrus.New()
	log.SetOutput(out)
	log.SetLevel(cfg.Level)
	log.SetFormatter(&logrus.TextFormatter{FullTimestamp: true})
	// pkg/apiclient and go-cs-bouncer log through logrus' global logger:
	// at debug they print the JWT, at trace whole requests (the machine
	// password, the bouncer key). The global logger never goes past info,
	// whatever log_level says; log_level raises only the bridge's own.
	logrus.SetLevel(min(cfg.Level, logrus.InfoLevel))
	logrus.SetOutput(out)
	return log
}

// wire builds one engine per APIBAN set (config.Feeds), each with its
// own feed client, LAPI client (its scenario) and state file; the feed
// clients share one pacer, since APIBAN's rate limit is per key.
func wire(ctx context.Context, cfg *config.Config, never *neverban.Set, dryRun bool, log *logrus.Logger) ([]*bridge.Engine, error) {
	gate := apiban.NewGate(cfg.APIBAN.MaxRequests, cfg.APIBAN.RateWindow)
	var engines []*bridge.Engine
	for _, f := range cfg.Feeds() {
		e, err := wireSet(cfg, f, gate, never, dryRun, log)
		if err != nil {
			return nil, err
		}
		engines = append(engines, e)
	}
	return engines, nil
}

func wireSet(cfg *config.Config, f config.Feed, gate *apiban.Gate, never *neverban.Set, dryRun bool, log *logrus.Logger) (*bridge.Engine, error) {
	src, err := newSetFeed(cfg, f, gate, log)
	if err != nil {
		return nil, err
	}
	lc, err := newSetLAPI(cfg, f)
	if err != nil {
		return nil, err
	}
	return bridge.New(src, kindLAPI{lc}, bridge.Options{
		StatePath:           f.StateFile,
		Duration:            cfg.Decisions.Duration,
		RefreshBefore:       cfg.Decisions.RefreshBefore,
		BatchSize:           cfg.Decisions.BatchSize,
		FullResyncInterval:  cfg.APIBAN.FullResyncInterval,
		Allowlist:           cfg.Allowlist.Prefixes,
		LAPIAllowlists:      cfg.Allowlist.LAPIAllowlists,
		NeverBan:            never,
		MinPrefixV4:         cfg.Decisions.MinPrefixV4,
		MinPrefixV6:         cfg.Decisions.MinPrefixV6,
		MaxNewPerSync:       cfg.Decisions.MaxNewPerSync,
		MaxAddressesPerSync: uint64(cfg.Decisions.MaxAddressesPerSync),
		DryRun:              dryRun,
		Log:                 log.WithField("component", "bridge").WithField("set", f.Set),
	}), nil
}

// neverBan lists this host's, its LAPI hosts', its gateways' and its
// resolvers' addresses, which neither the feed nor the bouncer may ever
// ban (the special-purpose ranges are always in the set). Read at start:
// an address added later is still covered by the special-purpose table
// when it is private, and by a restart otherwise. What cannot be read is
// logged, not fatal: the bridge would otherwise not start while DNS is
// down.
func neverBan(ctx context.Context, cfg *config.Config, log logrus.FieldLogger) *neverban.Set {
	urls := []string{cfg.CrowdSec.LAPIURL}
	if cfg.Bouncer.Enabled && cfg.Bouncer.LAPIURL != "" {
		urls = append(urls, cfg.Bouncer.LAPIURL)
	}
	entries, err := neverban.Discover(ctx, neverban.Host{LAPIURLs: urls})
	if err != nil {
		log.WithError(err).Warn("some of this host's, the LAPI host's, gateways' or resolvers' addresses are unknown: they are not protected from bans")
	}
	log.WithField("addresses", len(entries)).Debug("never banned: this host's, the LAPI host's, gateways' and resolvers' addresses")
	return neverban.New(entries...)
}

// syncOnce syncs each set once, one after the other; a set that fails
// does not keep the next from syncing, and makes the exit code 1.
func syncOnce(ctx context.Context, es []*bridge.Engine, f flags, stdout io.Writer, log *logrus.Logger) int {
	code := 0
	for i, e := range es {
		rep, err := e.Sync(ctx, f.full)
		logReport(log, setName(es, i), rep, err)
		if f.dryRun {
			for _, p := range rep.WouldPush {
				fmt.Fprintln(stdout, p)
			}
		}
		if err != nil {
			code = 1
		}
	}
	return code
}

// setName is engine i's set, as the feed client knows it.
func setName(es []*bridge.Engine, i int) string {
	if c, ok := es[i].Source().(*apiban.Client); ok {
		return c.Set()
	}
	return ""
}

func logReport(log *logrus.Logger, set string, rep bridge.Report, err error) {
	entry := log.WithFields(rep.Fields()).WithField("set", set)
	if err != nil {
		entry.WithError(err).Error("sync failed")
		return
	}
	entry.Info("sync finished")
}

// daemon syncs every poll_interval until ctx ends; SIGUSR1 asks for a full
// resync.
func daemon(ctx context.Context, es []*bridge.Engine, cfg *config.Config, never *neverban.Set, fullFirst bool, log *logrus.Logger) {
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	defer signal.Stop(usr1)
	full := make(chan struct{}, 1)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-usr1:
				select {
				case full <- struct{}{}:
				default:
				}
			}
		}
	}()
	log.WithField("version", version).WithField("poll_interval", cfg.APIBAN.PollInterval).Info("starting")
	obs := startObserver(ctx, es, cfg, log)
	defer obs.close()
	defer startBouncer(ctx, cfg, never, obs, log)() // waits for the bouncer's cleanup
	defer startMirror(ctx, cfg, never, obs, log)()
	r := &round{sets: len(es)}
	bridge.RunEach(ctx, es, bridge.Schedule{
		Interval: cfg.APIBAN.PollInterval, RetryMin: min(10*time.Second, cfg.APIBAN.PollInterval),
		FirstFull: fullFirst, FullNow: full,
	}, func(i int, rep bridge.Report, err error) {
		logReport(log, setName(es, i), rep, err)
		if rep, done, err := r.add(setName(es, i), rep, err); done {
			obs.observe(es, rep, err)
		}
	})
	log.Info("stopped")
}
