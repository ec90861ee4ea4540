package main

import (
	"github.com/sirupsen/logrus"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bridge/lapi"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/config"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/source/apiban"
)

// newFeed builds the APIBAN client of the first set from the
// configuration; the daemon and the subcommands share it so they behave
// alike.
func newFeed(cfg *config.Config, log *logrus.Logger) (*apiban.Client, error) {
	return newSetFeed(cfg, cfg.Feeds()[0], nil, log)
}

// newSetFeed builds the APIBAN client of one set. The clients of several
// sets share gate: APIBAN's rate limit is per key. The client trusts these
// values: config checked every one of them.
func newSetFeed(cfg *config.Config, f config.Feed, gate *apiban.Gate, log *logrus.Logger) (*apiban.Client, error) {
	return apiban.New(apiban.Config{
		BaseURL:     cfg.APIBAN.URL,
		APIKey:      cfg.APIBAN.APIKey,
		Version:     cfg.APIBAN.APIVersion,
		Set:         f.Set,
		Gate:        gate,
		MaxRequests: cfg.APIBAN.MaxRequests,
		RateWindow:  cfg.APIBAN.RateWindow,
		Timeout:     cfg.APIBAN.Timeout,
		MaxRetries:  cfg.APIBAN.MaxRetries,
		MaxPages:    cfg.APIBAN.MaxPages,
		Logger:      log.WithField("component", "apiban").WithField("set", f.Set),
	})
}

// newLAPI builds the machine client of LAPI of the first set.
func newLAPI(cfg *config.Config) (*lapi.Client, error) {
	return newSetLAPI(cfg, cfg.Feeds()[0])
}

// newSetLAPI builds the machine client of LAPI of one set: its decisions
// carry the set's scenario, which bounds what the client reads back.
func newSetLAPI(cfg *config.Config, f config.Feed) (*lapi.Client, error) {
	cs := cfg.CrowdSec
	return lapi.New(lapi.Options{
		URL:                cs.LAPIURL,
		Login:              cs.Login,
		Password:           cs.Password,
		UserAgent:          name + "/" + version,
		CertPath:           cs.CertPath,
		KeyPath:            cs.KeyPath,
		CACertPath:         cs.CACertPath,
		InsecureSkipVerify: cs.InsecureSkipVerify,
		Timeout:            cs.Timeout,
		Origin:             cfg.Decisions.Origin,
		Scenario:           f.Scenario,
		SharedOrigin:       len(cfg.Feeds()) > 1,
		Type:               cfg.Decisions.Type,
		BatchSize:          cfg.Decisions.BatchSize,
		Message:            "APIBAN " + f.Set + " blocklist",
	})
}
