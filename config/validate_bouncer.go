package config

import (
	"fmt"
	"regexp"
	"strings"
	"time"
)

// objectName is what nft, ipset and iptables all accept as a name.
var objectName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]*$`)

// Bouncer limits.
const (
	// MinUpdateFrequency keeps the stream from hammering LAPI.
	MinUpdateFrequency = time.Second
	// MinResyncInterval keeps the full pulls (LAPI's whole list each)
	// from hammering LAPI.
	MinResyncInterval = time.Minute
	// MinMetricsInterval keeps usage metrics from flooding LAPI.
	MinMetricsInterval = time.Minute
	// maxSetPrefix: ipset names hold 31 characters, and the ipset
	// backend appends at most 8: "-9999-v6" (an origin's set, slots up
	// to 9999), "-origins" or "-swap". nftables names hold 256.
	maxSetPrefix = 23
	// maxIptablesChain: iptables chain names hold 28 characters.
	maxIptablesChain = 28
	maxNftName       = 64
)

// Well-known names of other programs' objects: crowdsec-firewall-bouncer's
// (0.0.25, Debian bookworm, names its IPv6 objects crowdsec6-*), Debian's
// inet filter table, iptables' built-in tables, chains and targets,
// firewalld's, fail2ban's, Docker's and ufw's. The bouncer deletes and
// flushes its own objects at start and stop, so it must never be given
// one of these names. Compared without case.
var (
	wellKnownTables = []string{"filter", "nat", "mangle", "raw", "security", "route", "broute",
		"firewalld", "f2b-table", "docker", "crowdsec", "crowdsec6"}
	wellKnownChains = []string{"INPUT", "FORWARD", "OUTPUT", "PREROUTING", "POSTROUTING",
		"ACCEPT", "DROP", "REJECT", "RETURN", "DOCKER", "DOCKER-USER", "CROWDSEC_CHAIN"}
	wellKnownChainPrefixes = []string{"crowdsec-chain", "crowdsec6-chain", "f2b-", "ufw-", "ufw6-", "docker-"}
	wellKnownSetPrefixes   = []string{"crowdsec-blacklists", "crowdsec6-blacklists", "f2b-", "ufw-", "docker-"}
)

// wellKnown returns why v is another program's name: an error naming key,
// or nil.
func wellKnown(key, v string, names, prefixes []string) error {
	for _, n := range names {
		if strings.EqualFold(v, n) {
			return invalid(key, "%q is another program's object; the bouncer deletes and flushes its own objects: choose another name", v)
		}
	}
	if p, ok := foreignPrefix(v, prefixes); ok {
		return invalid(key, "must not start with %q (another program's objects), got %q", p, v)
	}
	return nil
}

// foreignPrefix returns the stock bouncer's prefix that v starts with
// (case-insensitively), if any.
func foreignPrefix(v string, prefixes []string) (string, bool) {
	for _, p := range prefixes {
		if strings.HasPrefix(strings.ToLower(v), p) {
			return p, true
		}
	}
	return "", false
}

// validate checks the bouncer section only when it is enabled, so a
// disabled section may keep placeholder values.
func (b *Bouncer) validate() []error {
	if !b.Enabled {
		return nil
	}
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, b.validateAuth()...)
	if b.LAPIURL != "" {
		add(checkHTTPURL("bouncer.lapi_url", b.LAPIURL))
	}
	if b.UpdateFrequency < MinUpdateFrequency {
		add(invalid("bouncer.update_frequency", "must be at least %s, got %s", formatDuration(MinUpdateFrequency), formatDuration(b.UpdateFrequency)))
	}
	add(checkResync("bouncer.resync_interval", b.ResyncInterval))
	errs = append(errs, checkOrigins("bouncer.origins", b.Origins)...)
	switch b.Mode {
	case "nftables", "ipset":
	default:
		add(invalid("bouncer.mode", "want nftables or ipset, got %q", b.Mode))
	}
	errs = append(errs, b.validateNames()...)
	errs = append(errs, b.validateHooks()...)
	if b.MetricsInterval != 0 && b.MetricsInterval < MinMetricsInterval {
		add(invalid("bouncer.metrics_interval", "must be 0 (none) or at least %s, got %s", formatDuration(MinMetricsInterval), formatDuration(b.MetricsInterval)))
	}
	if b.MinPrefixV4 < 1 || b.MinPrefixV4 > 32 {
		add(invalid("bouncer.min_prefix_v4", "must be between 1 and 32, got %d", b.MinPrefixV4))
	}
	if b.MinPrefixV6 < 1 || b.MinPrefixV6 > 128 {
		add(invalid("bouncer.min_prefix_v6", "must be between 1 and 128, got %d", b.MinPrefixV6))
	}
	if b.Priority < -1000 || b.Priority > 1000 {
		add(invalid("bouncer.priority", "must be between -1000 and 1000, got %d", b.Priority))
	}
	return errs
}

// validateAuth: a bouncer authenticates with a key or with a
// certificate, not both.
func (b *Bouncer) validateAuth() []error {
	var errs []error
	tlsAuth := b.CertPath != "" && b.KeyPath != ""
	switch {
	case b.APIKey == "" && !tlsAuth:
		errs = append(errs, invalid("bouncer.api_key", "required when bouncer.enabled is true, unless bouncer.cert_path and bouncer.key_path are set (cscli bouncers add NAME gives one)"))
	case b.APIKey != "" && tlsAuth:
		// go-cs-bouncer refuses both at start, long after `-t` said OK.
		errs = append(errs, invalid("bouncer.api_key", "must be empty when bouncer.cert_path and bouncer.key_path are set: a bouncer authenticates with a key or a certificate, not both"))
	case b.APIKey != "":
		if err := checkKeyText("bouncer.api_key", b.APIKey, noWhitespace); err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, checkCertPair("bouncer.cert_path", b.CertPath, "bouncer.key_path", b.KeyPath)...)
	// Only that it exists: go-cs-bouncer ignores a CA file without a
	// certificate (validate_tls.go).
	if err := checkFile("bouncer.ca_cert_path", b.CACertPath); err != nil {
		errs = append(errs, err)
	}
	return errs
}

// validateNames keeps the object names valid and away from the stock
// firewall bouncer's.
func (b *Bouncer) validateNames() []error {
	var errs []error
	name := func(key, v string, maxLen int) bool {
		if !objectName.MatchString(v) || len(v) > maxLen {
			errs = append(errs, invalid(key, "want a name of letters, digits, - and _ (at most %d, starting with a letter), got %q", maxLen, v))
			return false
		}
		return true
	}
	taken := func(key, v string, names, prefixes []string) {
		if err := wellKnown(key, v, names, prefixes); err != nil {
			errs = append(errs, err)
		}
	}
	if name("bouncer.table", b.Table, maxNftName) {
		taken("bouncer.table", b.Table, wellKnownTables, nil)
	}
	if name("bouncer.set_prefix", b.SetPrefix, maxSetPrefix) {
		taken("bouncer.set_prefix", b.SetPrefix, nil, wellKnownSetPrefixes)
	}
	if name("bouncer.chain", b.Chain, maxNftName-len("-forward")) {
		taken("bouncer.chain", b.Chain, wellKnownChains, wellKnownChainPrefixes)
	}
	if name("bouncer.iptables_chain", b.IptablesChain, maxIptablesChain) {
		taken("bouncer.iptables_chain", b.IptablesChain, wellKnownChains, wellKnownChainPrefixes)
	}
	return errs
}

func (b *Bouncer) validateHooks() []error {
	if len(b.Hooks) == 0 {
		return []error{invalid("bouncer.hooks", "want input, forward or both, got none")}
	}
	var errs []error
	seen := map[string]bool{}
	for i, h := range b.Hooks {
		key := fmt.Sprintf("bouncer.hooks[%d]", i)
		switch {
		case h != "input" && h != "forward":
			errs = append(errs, invalid(key, "want input or forward, got %q", h))
		case seen[h]:
			errs = append(errs, invalid(key, "%q given twice", h))
		}
		seen[h] = true
	}
	return errs
}

// checkResync: 0 turns the periodic full pull off; otherwise it must be
// at least MinResyncInterval.
func checkResync(key string, d time.Duration) error {
	if d == 0 || d >= MinResyncInterval {
		return nil
	}
	return invalid(key, "must be 0 (never) or at least %s, got %s", formatDuration(MinResyncInterval), formatDuration(d))
}
