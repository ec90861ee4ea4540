package config

import (
	"strings"
	"time"
)

// Mirror configures the local APIBAN-compatible API (docs/sip.md): LAPI's
// ban decisions served in APIBAN's wire format to the site's SIP proxies
// and firewalls. It reads LAPI's decision stream at crowdsec.lapi_url,
// trusting crowdsec.ca_cert_path and crowdsec.insecure_skip_verify, with
// its own bouncer key.
type Mirror struct {
	Enabled    bool   `mapstructure:"enabled"`
	ListenAddr string `mapstructure:"listen_addr"` // host:port
	// Keys are what clients put where APIBAN's key was.
	Keys []MirrorKey `mapstructure:"keys"`
	// LAPIKey is the mirror's own bouncer key (cscli bouncers add): two
	// readers sharing a key steal each other's deltas.
	LAPIKey string `mapstructure:"lapi_key"`
	// Origins served; empty means every origin.
	Origins         []string      `mapstructure:"origins"`
	UpdateFrequency time.Duration `mapstructure:"update_frequency"`
	// ResyncInterval: how often LAPI's whole active list replaces the
	// served set (0: never); docs/sip.md.
	ResyncInterval time.Duration `mapstructure:"resync_interval"`
	TLSCertPath    string        `mapstructure:"tls_cert_path"`
	TLSKeyPath     string        `mapstructure:"tls_key_path"`
	// MaxRequests per RateWindow per key; 0 turns the limit off.
	MaxRequests int           `mapstructure:"max_requests"`
	RateWindow  time.Duration `mapstructure:"rate_window"`
}

// MirrorKey is one client key. Name is what metrics show (never the
// key); left empty it becomes key-N, N counting from 1.
type MirrorKey struct {
	Name string `mapstructure:"name"`
	Key  string `mapstructure:"key"`
}

// defaultMirror: off; a local port beside the metrics' 60603; 60
// requests a minute per key, a page a second for a Kamailio rtimer and
// far above what APIBAN itself allows (11 per 2 minutes).
func defaultMirror() Mirror {
	return Mirror{
		ListenAddr:      "127.0.0.1:60604",
		Keys:            []MirrorKey{},
		Origins:         []string{},
		UpdateFrequency: 10 * time.Second,
		// One reader for the whole site: a full pull each 15 minutes
		// costs LAPI ~20 MB at 100,000 decisions (docs/sip.md).
		ResyncInterval: 15 * time.Minute,
		MaxRequests:    60,
		RateWindow:     time.Minute,
	}
}

// Mirror secrets: its LAPI key and every client key.
const (
	keyMirrorLAPIKey = "mirror.lapi_key"
	keyMirrorKey     = "mirror.keys.key" // any mirror.keys[N].key
)

// wrapMirrorKeys marks each mirror.keys[N].key of a parsed tree as a
// secret, as textYAML does for the secrets at fixed paths.
func wrapMirrorKeys(tree map[string]any) {
	section, _ := tree["mirror"].(map[string]any)
	list, _ := section["keys"].([]any)
	for _, item := range list {
		if m, ok := item.(map[string]any); ok {
			if s, ok := m["key"].(string); ok {
				m["key"] = secretText{s}
			}
		}
	}
}

// secretPath is key without list indices: mirror.keys[2].key is
// mirror.keys.key.
func secretPath(key string) string {
	for {
		i := strings.IndexByte(key, '[')
		j := strings.IndexByte(key, ']')
		if i < 0 || j < i {
			return key
		}
		key = key[:i] + key[j+1:]
	}
}
