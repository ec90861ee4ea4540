package bridgetest

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is a bridge configuration file as the tests write it. Only the
// fields set are written, so that a test's file holds what the test cares
// about and the bridge's defaults do the rest; the keys are those of the
// config package (which rejects unknown ones). A pointer field is one
// whose zero value is worth writing (max_requests: 0, enabled: false).
type Config struct {
	APIBAN     APIBAN     `yaml:"apiban,omitempty"`
	CrowdSec   CrowdSec   `yaml:"crowdsec,omitempty"`
	Decisions  Decisions  `yaml:"decisions,omitempty"`
	Allowlist  Allowlist  `yaml:"allowlist,omitempty"`
	StateFile  string     `yaml:"state_file,omitempty"`
	LogLevel   string     `yaml:"log_level,omitempty"`
	LogMode    string     `yaml:"log_mode,omitempty"`
	LogDir     string     `yaml:"log_dir,omitempty"`
	Prometheus Prometheus `yaml:"prometheus,omitempty"`
	Bouncer    Bouncer    `yaml:"bouncer,omitempty"`

	// Extra is raw YAML appended to the file, for what the fields above
	// do not cover. A key also set above is a duplicate: the bridge
	// refuses the file.
	Extra string `yaml:"-"`
}

// APIBAN is the apiban section.
type APIBAN struct {
	APIKey             string        `yaml:"api_key,omitempty"`
	URL                string        `yaml:"url,omitempty"`
	APIVersion         string        `yaml:"api_version,omitempty"`
	Set                string        `yaml:"set,omitempty"`
	Sets               []string      `yaml:"sets,omitempty"`
	PollInterval       time.Duration `yaml:"poll_interval,omitempty"`
	MaxRequests        *int          `yaml:"max_requests,omitempty"` // new(0): no client-side pacing
	RateWindow         time.Duration `yaml:"rate_window,omitempty"`
	FullResyncInterval time.Duration `yaml:"full_resync_interval,omitempty"`
	Timeout            time.Duration `yaml:"timeout,omitempty"`
	MaxRetries         *int          `yaml:"max_retries,omitempty"`
	MaxPages           int           `yaml:"max_pages,omitempty"`
}

// CrowdSec is the crowdsec section: the machine login to LAPI.
type CrowdSec struct {
	LAPIURL            string        `yaml:"lapi_url,omitempty"`
	Login              string        `yaml:"login,omitempty"`
	Password           string        `yaml:"password,omitempty"`
	CredentialsFile    string        `yaml:"credentials_file,omitempty"`
	CertPath           string        `yaml:"cert_path,omitempty"`
	KeyPath            string        `yaml:"key_path,omitempty"`
	CACertPath         string        `yaml:"ca_cert_path,omitempty"`
	InsecureSkipVerify bool          `yaml:"insecure_skip_verify,omitempty"`
	Timeout            time.Duration `yaml:"timeout,omitempty"`
}

// Decisions is the decisions section.
type Decisions struct {
	Duration      time.Duration `yaml:"duration,omitempty"`
	Origin        string        `yaml:"origin,omitempty"`
	BatchSize     int           `yaml:"batch_size,omitempty"`
	RefreshBefore time.Duration `yaml:"refresh_before,omitempty"`
	// MaxNewPerSync is written even when 0 (no cap): tests push lists
	// larger than the default cap unless they set one.
	MaxNewPerSync int `yaml:"max_new_per_sync"`
}

// Allowlist is the allowlist section.
type Allowlist struct {
	CIDRs          []string `yaml:"cidrs,omitempty"`
	LAPIAllowlists *bool    `yaml:"lapi_allowlists,omitempty"`
}

// Prometheus is the prometheus section.
type Prometheus struct {
	Enabled    *bool  `yaml:"enabled,omitempty"`
	ListenAddr string `yaml:"listen_addr,omitempty"`
	ListenPort *int   `yaml:"listen_port,omitempty"` // new(0): any free port
}

// Bouncer is the bouncer section: the embedded firewall bouncer.
type Bouncer struct {
	Enabled         *bool         `yaml:"enabled,omitempty"`
	APIKey          string        `yaml:"api_key,omitempty"`
	LAPIURL         string        `yaml:"lapi_url,omitempty"`
	CertPath        string        `yaml:"cert_path,omitempty"`
	KeyPath         string        `yaml:"key_path,omitempty"`
	CACertPath      string        `yaml:"ca_cert_path,omitempty"`
	UpdateFrequency time.Duration `yaml:"update_frequency,omitempty"`
	Origins         []string      `yaml:"origins,omitempty"`
	Mode            string        `yaml:"mode,omitempty"`
	Table           string        `yaml:"table,omitempty"`
	IptablesChain   string        `yaml:"iptables_chain,omitempty"`
	KeepOnExit      bool          `yaml:"keep_on_exit,omitempty"`
	MinPrefixV4     int           `yaml:"min_prefix_v4,omitempty"`
	MinPrefixV6     int           `yaml:"min_prefix_v6,omitempty"`
}

// YAML renders the configuration file.
func (c Config) YAML() []byte {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(c); err != nil {
		panic("bridgetest: rendering a config: " + err.Error()) // only plain types above
	}
	if err := enc.Close(); err != nil {
		panic("bridgetest: rendering a config: " + err.Error())
	}
	if c.Extra != "" {
		b.WriteString(c.Extra)
		if c.Extra[len(c.Extra)-1] != '\n' {
			b.WriteByte('\n')
		}
	}
	return b.Bytes()
}

// Write writes the configuration to dir/bridge.yaml, mode 0600 (it holds
// secrets), replacing what is there, and returns the file's path.
func (c Config) Write(t testing.TB, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "bridge.yaml")
	if err := os.WriteFile(path, c.YAML(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
