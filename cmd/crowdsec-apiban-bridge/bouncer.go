package main

import (
	"context"

	"github.com/sirupsen/logrus"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bouncer"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/config"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/source/neverban"
)

// startBouncer starts the embedded firewall bouncer when it is enabled and
// returns a function that waits for it to stop (and clean up) once ctx
// ends. A bouncer that cannot start is logged; the bridge keeps running.
func startBouncer(ctx context.Context, cfg *config.Config, never *neverban.Set, obs *observer, log *logrus.Logger) (wait func()) {
	bc := cfg.Bouncer
	if !bc.Enabled {
		return func() {}
	}
	l := log.WithField("component", "bouncer")
	backend, err := newBackendLogged(bc, l)
	if err != nil {
		l.WithError(err).Error("bouncer: cannot start")
		return func() {}
	}
	for _, line := range bouncer.DetectFirewallBouncer(ctx) {
		l.Warn(line)
	}
	opts := bouncerOptions(cfg, l)
	opts.NeverBan = never
	b := bouncer.New(backend, opts)
	if obs != nil && obs.m != nil {
		obs.m.Registry().MustRegister(b.Collector())
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.WithFields(logrus.Fields{"mode": bc.Mode, "origins": originsField(bc.Origins)}).Info("bouncer: starting")
		if err := b.Run(ctx); err != nil {
			l.WithError(err).Error("bouncer: stopped")
		}
	}()
	return func() { <-done }
}

func bouncerOptions(cfg *config.Config, l logrus.FieldLogger) bouncer.Options {
	bc := cfg.Bouncer
	url := bc.LAPIURL
	if url == "" {
		url = cfg.CrowdSec.LAPIURL
	}
	return bouncer.Options{
		StreamOptions: bouncer.StreamOptions{
			APIURL:             url,
			APIKey:             bc.APIKey,
			CertPath:           bc.CertPath,
			KeyPath:            bc.KeyPath,
			CACertPath:         bc.CACertPath,
			InsecureSkipVerify: bc.InsecureSkipVerify,
			UpdateFrequency:    bc.UpdateFrequency,
			Origins:            bc.Origins,
			UserAgent:          name + "-bouncer/" + version,
		},
		Resync:          bc.ResyncInterval,
		Allowlist:       cfg.Allowlist.Prefixes,
		KeepOnExit:      bc.KeepOnExit,
		MinPrefixV4:     bc.MinPrefixV4,
		MinPrefixV6:     bc.MinPrefixV6,
		MetricsInterval: bc.MetricsInterval,
		Log:             l,
	}
}

// newBackend opens the configured backend without a logger (check).
func newBackend(bc config.Bouncer) (bouncer.Backend, error) { return newBackendLogged(bc, nil) }

func originsField(origins []string) any {
	if len(origins) == 0 {
		return "all"
	}
	return origins
}
