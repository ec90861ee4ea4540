// Package config holds the bridge's configuration: the struct with its
// defaults, loading (YAML through viper, ${VAR} expansion, .yaml.local
// overlay, environment overrides) and validation, all in one place.
package config

import (
	"net/netip"
	"time"

	"github.com/sirupsen/logrus"
)

// DefaultPath is where the packaged configuration lives.
const DefaultPath = "/etc/crowdsec/bouncers/crowdsec-apiban-bridge.yaml"

// Config is the validated configuration. Every field is set after Load.
type Config struct {
	APIBAN    APIBAN    `mapstructure:"apiban"`
	CrowdSec  CrowdSec  `mapstructure:"crowdsec"`
	Decisions Decisions `mapstructure:"decisions"`
	Allowlist Allowlist `mapstructure:"allowlist"`
	StateFile string    `mapstructure:"state_file"`
	LogLevel  string    `mapstructure:"log_level"`

	// Level is LogLevel parsed.
	Level logrus.Level `mapstructure:"-"`

	// Warnings are problems that do not stop the bridge (a secret in a
	// file others can read, an allowlist entry with host bits set); the
	// caller logs them once the logger is set up.
	Warnings []string `mapstructure:"-"`
}

// APIBAN configures the feed client.
type APIBAN struct {
	APIKey             string        `mapstructure:"api_key"`
	URL                string        `mapstructure:"url"`
	APIVersion         string        `mapstructure:"api_version"`
	Set                string        `mapstructure:"set"`
	PollInterval       time.Duration `mapstructure:"poll_interval"`
	MaxRequests        int           `mapstructure:"max_requests"`
	RateWindow         time.Duration `mapstructure:"rate_window"`
	FullResyncInterval time.Duration `mapstructure:"full_resync_interval"`
	Timeout            time.Duration `mapstructure:"timeout"`
	MaxRetries         int           `mapstructure:"max_retries"`
}

// CrowdSec configures the machine login to the Local API.
type CrowdSec struct {
	LAPIURL            string `mapstructure:"lapi_url"`
	Login              string `mapstructure:"login"`
	Password           string `mapstructure:"password"`
	CredentialsFile    string `mapstructure:"credentials_file"`
	CertPath           string `mapstructure:"cert_path"`
	KeyPath            string `mapstructure:"key_path"`
	CACertPath         string `mapstructure:"ca_cert_path"`
	InsecureSkipVerify bool   `mapstructure:"insecure_skip_verify"`
}

// Decisions shapes what is pushed to LAPI.
type Decisions struct {
	Duration time.Duration `mapstructure:"duration"`
	Type     string        `mapstructure:"type"`
	Origin   string        `mapstructure:"origin"`
	Scenario string        `mapstructure:"scenario"`
	// BatchSize is the number of decisions carried by one alert.
	BatchSize int `mapstructure:"batch_size"`
	// RefreshBefore: an address listed again whose decision ends within
	// this window gets a fresh decision.
	RefreshBefore time.Duration `mapstructure:"refresh_before"`
}

// Allowlist lists what is never pushed.
type Allowlist struct {
	CIDRs          []string `mapstructure:"cidrs"`
	LAPIAllowlists bool     `mapstructure:"lapi_allowlists"`

	// Prefixes is CIDRs parsed.
	Prefixes []netip.Prefix `mapstructure:"-"`
}

// Default returns the configuration used for every key the files leave out.
// The template (Template) spells out the same values; a test keeps them equal.
func Default() *Config {
	return &Config{
		APIBAN: APIBAN{
			URL:                "https://apiban.org",
			APIVersion:         "v2",
			Set:                "sip",
			PollInterval:       5 * time.Minute,
			MaxRequests:        10,
			RateWindow:         2 * time.Minute,
			FullResyncInterval: 168 * time.Hour,
			Timeout:            30 * time.Second,
			MaxRetries:         5,
		},
		CrowdSec: CrowdSec{
			LAPIURL: "http://127.0.0.1:8080/",
			Login:   "crowdsec-apiban-bridge",
		},
		Decisions: Decisions{
			// Hours, not days: LAPI before 1.7.0 does not parse "7d".
			Duration:      168 * time.Hour,
			Type:          "ban",
			Origin:        "apiban",
			Scenario:      "apiban/sip-blocklist",
			BatchSize:     1000,
			RefreshBefore: 24 * time.Hour,
		},
		Allowlist: Allowlist{
			CIDRs:          []string{},
			LAPIAllowlists: true,
			Prefixes:       []netip.Prefix{},
		},
		StateFile: "/var/lib/crowdsec-apiban-bridge/state.json",
		LogLevel:  "info",
		Level:     logrus.InfoLevel,
	}
}
