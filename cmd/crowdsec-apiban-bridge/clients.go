package main

import (
	"github.com/sirupsen/logrus"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bridge/lapi"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/config"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/source/apiban"
)

// newFeed builds the APIBAN client from the configuration; the daemon and
// the subcommands share it so they behave alike. The client trusts these
// values: config checked every one of them.
func newFeed(cfg *config.Config, log *logrus.Logger) (*apiban.Client, error) {
	return apiban.New(apiban.Config{
		BaseURL:     cfg.APIBAN.URL,
		APIKey:      cfg.APIBAN.APIKey,
		Version:     cfg.APIBAN.APIVersion,
		Set:         cfg.APIBAN.Set,
		MaxRequests: cfg.APIBAN.MaxRequests,
		RateWindow:  cfg.APIBAN.RateWindow,
		Timeout:     cfg.APIBAN.Timeout,
		MaxRetries:  cfg.APIBAN.MaxRetries,
		MaxPages:    cfg.APIBAN.MaxPages,
		Logger:      log.WithField("component", "apiban"),
	})
}

// newLAPI builds the machine client of LAPI from the configuration.
func newLAPI(cfg *config.Config) (*lapi.Client, error) {
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
		Scenario:           cfg.Decisions.Scenario,
		Type:               cfg.Decisions.Type,
		BatchSize:          cfg.Decisions.BatchSize,
		Message:            "APIBAN " + cfg.APIBAN.Set + " blocklist",
	})
}
