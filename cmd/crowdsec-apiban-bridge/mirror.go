package main

import (
	"context"
	"io"
	"net"
	"net/netip"

	"github.com/sirupsen/logrus"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bouncer"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bridge/mirror"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/config"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/source/neverban"
)

// startMirror serves the APIBAN-compatible mirror when it is enabled and
// returns a function that waits for it to stop once ctx ends. A mirror
// that cannot listen is logged; the bridge keeps running. Keys are never
// logged: only their names.
func startMirror(ctx context.Context, cfg *config.Config, never *neverban.Set, obs *observer, log *logrus.Logger) (wait func()) {
	mc := cfg.Mirror
	if !mc.Enabled {
		return func() {}
	}
	l := log.WithField("component", "mirror")
	ln, err := net.Listen("tcp", mc.ListenAddr)
	if err != nil {
		l.WithError(err).Error("mirror: cannot listen")
		return func() {}
	}
	// Served is what the embedded bouncer would enforce: the never-ban
	// list, the allowlist and bouncer.min_prefix_v4/v6 (docs/sip.md).
	never = never.With(neverban.ReasonAllowlist, cfg.Allowlist.Prefixes...)
	minV4, minV6 := cfg.Bouncer.MinPrefixV4, cfg.Bouncer.MinPrefixV6
	set := mirror.NewSet(func(p netip.Prefix) bool {
		_, _, hit := never.Match(p)
		return !hit && !neverban.TooWide(p, minV4, minV6)
	})
	keys := make([]mirror.Key, len(mc.Keys))
	names := make([]string, len(mc.Keys))
	for i, k := range mc.Keys {
		keys[i], names[i] = mirror.Key{Name: k.Name, Key: k.Key}, k.Name
	}
	opts := mirror.Options{Keys: keys, MaxRequests: mc.MaxRequests, RateWindow: mc.RateWindow}
	if obs != nil && obs.m != nil {
		opts.Metrics = mirror.NewMetrics(set)
		obs.m.Registry().MustRegister(opts.Metrics.Collectors()...)
	}
	done := make(chan struct{}, 2)
	go func() {
		defer func() { done <- struct{}{} }()
		err := mirror.Stream(ctx, set, bouncer.StreamOptions{
			APIURL: cfg.CrowdSec.LAPIURL, APIKey: mc.LAPIKey, CACertPath: cfg.CrowdSec.CACertPath,
			InsecureSkipVerify: cfg.CrowdSec.InsecureSkipVerify, UpdateFrequency: mc.UpdateFrequency,
			Origins: mc.Origins, UserAgent: name + "-mirror/" + version,
		}, mc.ResyncInterval, l)
		if err != nil {
			l.WithError(err).Error("mirror: decision stream stopped")
		}
	}()
	go func() {
		defer func() { done <- struct{}{} }()
		l.WithFields(logrus.Fields{"address": ln.Addr().String(), "clients": names, "origins": originsField(mc.Origins),
			"tls": mc.TLSCertPath != ""}).Info("mirror: serving APIBAN's API")
		if err := mirror.Serve(ctx, ln, mirror.NewHandler(set, opts), mc.TLSCertPath, mc.TLSKeyPath); err != nil {
			l.WithError(err).Error("mirror: stopped")
		}
	}()
	return func() { <-done; <-done }
}

// mirrorRows report the mirror as the running daemon's /metrics shows it.
func mirrorRows(cfg *config.Config, d daemonView, w io.Writer) {
	mc := cfg.Mirror
	if !mc.Enabled {
		row(w, "mirror", "n/a (mirror.enabled is false)")
		return
	}
	m, ok := d.figures("crowdsec_apiban_bridge_mirror_")
	if !ok {
		row(w, "mirror", "enabled on %s, set size unknown (%s)", mc.ListenAddr, orWhy(d.why, "the daemon's /metrics has no mirror figures"))
		return
	}
	row(w, "mirror", "enabled on %s: %.0f addresses and ranges served to %d keys, %.0f requests answered",
		mc.ListenAddr, m["crowdsec_apiban_bridge_mirror_set_size"], len(mc.Keys), m["crowdsec_apiban_bridge_mirror_requests_total"])
	resyncRow(w, "mirror resyncs", "mirror.resync_interval", mc.ResyncInterval, m, "crowdsec_apiban_bridge_mirror_")
}
