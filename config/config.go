// Package config holds the bridge's configuration: the struct with its
// defaults, loading (YAML through viper, ${VAR} expansion, .yaml.local
// overlay, environment overrides) and validation, all in one place.
package config

import (
	"net"
	"net/netip"
	"strconv"
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

	// Log keys as crowdsec-firewall-bouncer spells them. LogMode is
	// stdout (journald under systemd) or file (LogDir, rotated).
	LogMode       string `mapstructure:"log_mode"`
	LogDir        string `mapstructure:"log_dir"`
	LogMaxSize    int    `mapstructure:"log_max_size"`    // megabytes before rotation
	LogMaxBackups int    `mapstructure:"log_max_backups"` // rotated files kept
	LogMaxAge     int    `mapstructure:"log_max_age"`     // days a rotated file is kept
	LogCompress   bool   `mapstructure:"log_compression"`

	Prometheus Prometheus `mapstructure:"prometheus"`

	Bouncer Bouncer `mapstructure:"bouncer"`

	Mirror Mirror `mapstructure:"mirror"`

	// Level is LogLevel parsed.
	Level logrus.Level `mapstructure:"-"`

	// Warnings are problems that do not stop the bridge (a secret in a
	// file others can read, an allowlist entry with host bits set); the
	// caller logs them once the logger is set up.
	Warnings []string `mapstructure:"-"`
}

// APIBAN configures the feed client.
type APIBAN struct {
	// Enabled false runs only the embedded bouncer: no sync engine, no
	// machine login, no state file (docs/scale-out.md, "Bouncer-only").
	Enabled    bool   `mapstructure:"enabled"`
	APIKey     string `mapstructure:"api_key"`
	URL        string `mapstructure:"url"`
	APIVersion string `mapstructure:"api_version"`
	Set        string `mapstructure:"set"`
	// Sets, when not empty, replaces Set: each set is pulled with its own
	// cursor and state file (Config.Feeds).
	Sets               []string      `mapstructure:"sets"`
	PollInterval       time.Duration `mapstructure:"poll_interval"`
	MaxRequests        int           `mapstructure:"max_requests"`
	RateWindow         time.Duration `mapstructure:"rate_window"`
	FullResyncInterval time.Duration `mapstructure:"full_resync_interval"`
	Timeout            time.Duration `mapstructure:"timeout"`
	MaxRetries         int           `mapstructure:"max_retries"`
	// MaxPages bounds one pass through the feed (full pages of 250): the
	// default 400 is 100,000 entries, ten times the largest APIBAN list
	// this project designs for. A feed still going after that is broken
	// or hostile, and a pass must end (docs/reliability.md).
	MaxPages int `mapstructure:"max_pages"`
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
	// Timeout bounds each LAPI call: a LAPI that accepts connections and
	// never answers fails the sync, and /healthz with it.
	Timeout time.Duration `mapstructure:"timeout"`
}

// Decisions shapes what is pushed to LAPI.
type Decisions struct {
	Duration time.Duration `mapstructure:"duration"`
	Type     string        `mapstructure:"type"`
	Origin   string        `mapstructure:"origin"`
	Scenario string        `mapstructure:"scenario"`
	// ScenarioTemplate names the scenario of each of apiban.sets, {set}
	// standing for the set (Config.Feeds); Scenario is apiban.set's.
	ScenarioTemplate string `mapstructure:"scenario_template"`
	// BatchSize is the number of decisions carried by one alert.
	BatchSize int `mapstructure:"batch_size"`
	// RefreshBefore: an address listed again whose decision ends within
	// this window gets a fresh decision.
	RefreshBefore time.Duration `mapstructure:"refresh_before"`
	// MinPrefixV4 and MinPrefixV6 refuse feed prefixes wider than this
	// many bits: one poisoned entry must not ban a whole provider.
	MinPrefixV4 int `mapstructure:"min_prefix_v4"`
	MinPrefixV6 int `mapstructure:"min_prefix_v6"`
	// MaxNewPerSync stops a sync that would push more new decisions than
	// this (0: no cap), so that a flooded feed is looked at first.
	MaxNewPerSync int `mapstructure:"max_new_per_sync"`
	// MaxAddressesPerSync does the same for the addresses those
	// decisions cover (IPv4 addresses plus IPv6 /64s; 0: no cap).
	MaxAddressesPerSync int `mapstructure:"max_addresses_per_sync"`
}

// Allowlist lists what is never pushed.
type Allowlist struct {
	CIDRs          []string `mapstructure:"cidrs"`
	LAPIAllowlists bool     `mapstructure:"lapi_allowlists"`

	// Prefixes is CIDRs parsed.
	Prefixes []netip.Prefix `mapstructure:"-"`
}

// Prometheus configures the /metrics and /healthz listener.
type Prometheus struct {
	Enabled    bool   `mapstructure:"enabled"`
	ListenAddr string `mapstructure:"listen_addr"`
	ListenPort int    `mapstructure:"listen_port"`
}

// Addr is host:port of the metrics and health endpoints.
func (p Prometheus) Addr() string { return net.JoinHostPort(p.ListenAddr, strconv.Itoa(p.ListenPort)) }

// Bouncer configures the optional embedded firewall bouncer. Its object
// names default to names crowdsec-firewall-bouncer never uses.
type Bouncer struct {
	Enabled bool `mapstructure:"enabled"`
	// APIKey is this bouncer's own key (`cscli bouncers add`): two
	// processes sharing a key steal each other's decisions.
	APIKey             string        `mapstructure:"api_key"`
	LAPIURL            string        `mapstructure:"lapi_url"` // "" means crowdsec.lapi_url
	CertPath           string        `mapstructure:"cert_path"`
	KeyPath            string        `mapstructure:"key_path"`
	CACertPath         string        `mapstructure:"ca_cert_path"`
	InsecureSkipVerify bool          `mapstructure:"insecure_skip_verify"`
	UpdateFrequency    time.Duration `mapstructure:"update_frequency"`
	// ResyncInterval: how often LAPI's whole active list is pulled again
	// and the kernel sets rebuilt from it (0: never); docs/bouncer.md.
	ResyncInterval time.Duration `mapstructure:"resync_interval"`
	// Origins filters decisions by origin; empty means every origin.
	Origins []string `mapstructure:"origins"`
	Mode    string   `mapstructure:"mode"` // nftables or ipset
	// Table is the nftables table (family inet).
	Table string `mapstructure:"table"`
	// SetPrefix names the sets: PREFIX-ORIGIN-v4 (-v4-ranges, -v6,
	// -v6-ranges) in nftables, PREFIX-N-v4 and PREFIX-N-v6 (a slot N per
	// origin) and PREFIX-origins in ipset mode.
	SetPrefix string `mapstructure:"set_prefix"`
	// Chain prefixes the nftables base chains (CHAIN-input, CHAIN-forward).
	Chain string `mapstructure:"chain"`
	// IptablesChain is the iptables chain of ipset mode.
	IptablesChain string   `mapstructure:"iptables_chain"`
	Hooks         []string `mapstructure:"hooks"` // input, forward
	Priority      int      `mapstructure:"priority"`
	KeepOnExit    bool     `mapstructure:"keep_on_exit"`
	// MetricsInterval: how often usage metrics go to LAPI; 0 sends none.
	MetricsInterval time.Duration `mapstructure:"metrics_interval"`
	// MinPrefixV4 and MinPrefixV6: a decision's range wider than this
	// many bits is never enforced, whatever its origin (docs/bouncer.md).
	MinPrefixV4 int `mapstructure:"min_prefix_v4"`
	MinPrefixV6 int `mapstructure:"min_prefix_v6"`
}

// Default returns the configuration used for every key the files leave out.
// The template (Template) spells out the same values; a test keeps them equal.
func Default() *Config {
	return &Config{
		APIBAN: APIBAN{
			Enabled:            true,
			URL:                "https://apiban.org",
			APIVersion:         "v2",
			Set:                "sip",
			Sets:               []string{},
			PollInterval:       5 * time.Minute,
			MaxRequests:        10,
			RateWindow:         2 * time.Minute,
			FullResyncInterval: 168 * time.Hour,
			Timeout:            30 * time.Second,
			MaxRetries:         5,
			MaxPages:           400,
		},
		CrowdSec: CrowdSec{
			LAPIURL: "http://127.0.0.1:8080/",
			Login:   "crowdsec-apiban-bridge",
			Timeout: 30 * time.Second,
		},
		Decisions: Decisions{
			// Hours, not days: LAPI before 1.7.0 does not parse "7d".
			Duration:         168 * time.Hour,
			Type:             "ban",
			Origin:           "apiban",
			Scenario:         "apiban/sip-blocklist",
			ScenarioTemplate: "apiban/{set}-blocklist",
			BatchSize:        1000,
			RefreshBefore:    24 * time.Hour,
			MinPrefixV4:      24,
			MinPrefixV6:      48,
			// APIBAN lists a few thousand addresses (those seen in the
			// last seven days); a first sync pushes them all. Sized in
			// docs/configuration.md.
			MaxNewPerSync:       25_000,
			MaxAddressesPerSync: 1 << 20,
		},
		Allowlist: Allowlist{
			CIDRs:          []string{},
			LAPIAllowlists: true,
			Prefixes:       []netip.Prefix{},
		},
		StateFile: "/var/lib/crowdsec-apiban-bridge/state.json",
		LogLevel:  "info",
		Level:     logrus.InfoLevel,
		// 60601/60602 belong to the firewall bouncers and 6060 to crowdsec.
		Prometheus: Prometheus{Enabled: true, ListenAddr: "127.0.0.1", ListenPort: 60603},
		Bouncer: Bouncer{
			UpdateFrequency: 10 * time.Second,
			// One full answer is ~20 MB at 100,000 decisions, per PBX:
			// hourly bounds a missed change to an hour at ~6 KB/s per
			// PBX (docs/bouncer.md, "Resync").
			ResyncInterval:  time.Hour,
			Origins:         []string{},
			Mode:            "nftables",
			Table:           "apiban_bridge",
			SetPrefix:       "apiban-bridge",
			Chain:           "apiban-bridge",
			IptablesChain:   "APIBAN_BRIDGE",
			Hooks:           []string{"input"},
			Priority:        -10,
			MetricsInterval: 15 * time.Minute,
			MinPrefixV4:     16,
			MinPrefixV6:     32,
		},
		Mirror:        defaultMirror(),
		LogMode:       "stdout",
		LogDir:        "/var/log/crowdsec-apiban-bridge/",
		LogMaxSize:    100,
		LogMaxBackups: 3,
		LogMaxAge:     30,
		LogCompress:   true,
	}
}
