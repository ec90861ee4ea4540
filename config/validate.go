package config

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
	"unicode"

	"github.com/sirupsen/logrus"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/source"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/source/apiban"
)

// Limits the validation enforces.
const (
	// MinPollInterval keeps a misconfigured bridge from hammering APIBAN.
	MinPollInterval = 10 * time.Second
	// MinDecisionDuration: shorter bans expire before the next poll can
	// renew them.
	MinDecisionDuration = time.Minute
	// MaxBatchSize bounds the decisions carried by one alert, well under
	// LAPI's 50 MiB body limit.
	MaxBatchSize = 10000
)

// decisionType is what LAPI and the bouncers treat as a remediation name.
var decisionType = regexp.MustCompile(`^[a-z][a-z0-9_-]*$`)

// invalid formats a validation error: "config: KEY: MESSAGE".
func invalid(key, format string, args ...any) error {
	return fmt.Errorf("config: %s: %s", key, fmt.Sprintf(format, args...))
}

// validate checks every key and fills the derived fields (Level,
// Allowlist.Prefixes), since parsing them is the check. It returns all the
// errors, not the first, so one `-t` run lists everything to fix. Secret
// values never enter a message.
func (c *Config) validate() (errs []error, warnings []string) {
	if c.APIBAN.Enabled {
		errs = append(errs, c.APIBAN.validate()...)
		warnings = append(warnings, c.APIBAN.warnings()...)
		errs = append(errs, c.CrowdSec.validate()...)
	} else {
		errs = append(errs, c.validateBouncerOnly()...) // validate_mode.go
	}
	errs = append(errs, c.Decisions.validate()...)
	alErrs, alWarnings := c.Allowlist.validate()
	errs = append(errs, alErrs...)
	warnings = append(warnings, alWarnings...)

	switch {
	case c.StateFile == "":
		errs = append(errs, invalid("state_file", "required"))
	case !filepath.IsAbs(c.StateFile):
		errs = append(errs, invalid("state_file", "must be an absolute path, got %q", c.StateFile))
	}

	errs = append(errs, c.validateLog()...)
	errs = append(errs, c.Prometheus.validate()...)
	errs = append(errs, c.Bouncer.validate()...)
	errs = append(errs, c.Mirror.validate()...)
	errs = append(errs, c.validateStreamKeys()...)

	if level, err := logrus.ParseLevel(c.LogLevel); err != nil {
		errs = append(errs, invalid("log_level", "want one of trace, debug, info, warn, error, fatal, panic, got %q", c.LogLevel))
	} else {
		c.Level = level
	}
	return errs, warnings
}

// validateStreamKeys refuses one LAPI bouncer key for the embedded
// bouncer and the mirror: two readers of LAPI's decision stream on one key
// share its last pull, so each misses part of the other's changes
// (docs/bouncer.md). Neither key is quoted.
func (c *Config) validateStreamKeys() []error {
	if !c.Bouncer.Enabled || !c.Mirror.Enabled || c.Mirror.LAPIKey == "" || c.Mirror.LAPIKey != c.Bouncer.APIKey {
		return nil
	}
	return []error{invalid("mirror.lapi_key", "must differ from bouncer.api_key: two readers of LAPI's decision stream on one key miss each other's changes "+
		"(cscli bouncers add crowdsec-apiban-bridge-mirror gives the mirror its own)")}
}

// validate checks every field the feed client is given: the client trusts
// its Config, so this is the only check. The rules that are APIBAN's (what
// a key, a base URL, a version, a set and the page limit may be) are the
// client's own exported checks; the limits an operator is held to are here.
func (a *APIBAN) validate() []error {
	var errs []error
	add := func(key string, err error) {
		if err != nil {
			errs = append(errs, invalid(key, "%v", err))
		}
	}

	if a.APIKey == "" {
		errs = append(errs, invalid("apiban.api_key", "required (set it here or in %s)", EnvAPIKey))
	} else if err := checkKeyText("apiban.api_key", a.APIKey, apiban.CheckKey); err != nil {
		errs = append(errs, err)
	}
	if err := checkHTTPURL("apiban.url", a.URL); err != nil {
		errs = append(errs, err)
	} else {
		add("apiban.url", apiban.CheckBaseURL(a.URL))
	}
	add("apiban.api_version", apiban.CheckVersion(a.APIVersion))
	add("apiban.set", checkSet(a.APIVersion, a.Set))

	if a.PollInterval < MinPollInterval {
		errs = append(errs, invalid("apiban.poll_interval", "must be at least %s, got %s", formatDuration(MinPollInterval), formatDuration(a.PollInterval)))
	}
	if a.MaxRequests < 0 {
		errs = append(errs, invalid("apiban.max_requests", "must be 0 (no pacing) or more, got %d", a.MaxRequests))
	}
	// Also the wait after a 429, so it counts even without pacing.
	if a.RateWindow <= 0 {
		errs = append(errs, invalid("apiban.rate_window", "must be positive (the pacing window and the wait after a 429), got %s", formatDuration(a.RateWindow)))
	}
	if a.FullResyncInterval != 0 && a.FullResyncInterval < a.PollInterval {
		errs = append(errs, invalid("apiban.full_resync_interval", "must be 0 (off) or at least apiban.poll_interval (%s), got %s",
			formatDuration(a.PollInterval), formatDuration(a.FullResyncInterval)))
	}
	if a.Timeout <= 0 {
		errs = append(errs, invalid("apiban.timeout", "must be positive, got %s", formatDuration(a.Timeout)))
	}
	add("apiban.max_pages", apiban.CheckMaxPages(a.MaxPages))
	if a.MaxRetries < 0 {
		errs = append(errs, invalid("apiban.max_retries", "must be 0 or more, got %d", a.MaxRetries))
	}
	return errs
}

func (cs *CrowdSec) validate() []error {
	var errs []error
	add := func(err error) { errs = append(errs, err) }

	if err := checkHTTPURL("crowdsec.lapi_url", cs.LAPIURL); err != nil {
		add(err)
	}
	if cs.Login == "" {
		add(invalid("crowdsec.login", "required"))
	}
	if cs.Timeout <= 0 || cs.Timeout > 10*time.Minute {
		add(invalid("crowdsec.timeout", "must be more than 0 and at most 10m, got %s", formatDuration(cs.Timeout)))
	}
	tlsAuth := cs.CertPath != "" && cs.KeyPath != ""
	// With a credentials file, its own errors already say what is missing.
	if cs.Password == "" && !tlsAuth && cs.CredentialsFile == "" {
		add(invalid("crowdsec.password", "required unless crowdsec.cert_path and crowdsec.key_path are set (set it here, in %s or through crowdsec.credentials_file)", EnvPassword))
	}
	errs = append(errs, checkCertPair("crowdsec.cert_path", cs.CertPath, "crowdsec.key_path", cs.KeyPath)...)
	if err := checkFile("crowdsec.ca_cert_path", cs.CACertPath); err != nil {
		add(err)
	} else if cs.CACertPath != "" {
		if err := checkCAFile("crowdsec.ca_cert_path", cs.CACertPath); err != nil {
			add(err)
		}
	}
	return errs
}

func (d *Decisions) validate() []error {
	var errs []error
	add := func(err error) { errs = append(errs, err) }

	if d.Duration < MinDecisionDuration {
		add(invalid("decisions.duration", "must be at least %s, got %s", formatDuration(MinDecisionDuration), formatDuration(d.Duration)))
	}
	if !decisionType.MatchString(d.Type) {
		add(invalid("decisions.type", "want a lowercase word such as ban or captcha, got %q", d.Type))
	}
	if err := checkWord("decisions.origin", d.Origin); err != nil {
		add(err)
	}
	if err := checkWord("decisions.scenario", d.Scenario); err != nil {
		add(err)
	}
	if d.BatchSize < 1 || d.BatchSize > MaxBatchSize {
		add(invalid("decisions.batch_size", "must be between 1 and %d, got %d", MaxBatchSize, d.BatchSize))
	}
	if d.RefreshBefore < 0 || (d.Duration > 0 && d.RefreshBefore >= d.Duration) {
		add(invalid("decisions.refresh_before", "must be 0 or more and less than decisions.duration (%s), got %s",
			formatDuration(d.Duration), formatDuration(d.RefreshBefore)))
	}
	if d.MinPrefixV4 < 1 || d.MinPrefixV4 > 32 {
		add(invalid("decisions.min_prefix_v4", "must be between 1 and 32, got %d", d.MinPrefixV4))
	}
	if d.MinPrefixV6 < 1 || d.MinPrefixV6 > 128 {
		add(invalid("decisions.min_prefix_v6", "must be between 1 and 128, got %d", d.MinPrefixV6))
	}
	if d.MaxNewPerSync < 0 {
		add(invalid("decisions.max_new_per_sync", "must be 0 (no cap) or more, got %d", d.MaxNewPerSync))
	}
	if d.MaxAddressesPerSync < 0 {
		add(invalid("decisions.max_addresses_per_sync", "must be 0 (no cap) or more, got %d", d.MaxAddressesPerSync))
	}
	return errs
}

// validate parses CIDRs into Prefixes: a bare address becomes a /32 or
// /128, an IPv4-mapped IPv6 address its IPv4 form (APIBAN lists plain
// IPv4), and host bits are masked off with a warning.
func (al *Allowlist) validate() (errs []error, warnings []string) {
	al.Prefixes = make([]netip.Prefix, 0, len(al.CIDRs))
	for i, s := range al.CIDRs {
		key := fmt.Sprintf("allowlist.cidrs[%d]", i)
		p, err := source.ParseUnmasked(s)
		if err != nil {
			errs = append(errs, invalid(key, "want a CIDR or an IP address, got %q", s))
			continue
		}
		if masked := p.Masked(); masked != p {
			warnings = append(warnings, fmt.Sprintf("%s: %q has host bits set; using %s", key, s, masked))
			p = masked
		}
		al.Prefixes = append(al.Prefixes, p)
	}
	return errs, warnings
}

// warnings flag what works but should not: a plain http:// URL sends the
// key unencrypted (in the path with api_version v1, in a header with v2),
// and APIBAN itself serves only https.
func (a *APIBAN) warnings() []string {
	u, err := url.Parse(a.URL)
	if err != nil || !strings.EqualFold(u.Scheme, "http") || u.Host == "" {
		return nil
	}
	return []string{fmt.Sprintf("apiban.url: %s is plain http: the API key crosses the network unencrypted; use https (APIBAN serves %s)",
		u.Redacted(), "https://apiban.org")}
}

// checkHTTPURL requires an absolute http or https URL. The value is shown
// with any userinfo password masked.
func checkHTTPURL(key, raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		if strings.Contains(raw, "@") {
			return invalid(key, "want an absolute http(s) URL")
		}
		return invalid(key, "want an absolute http(s) URL, got %q", raw)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return invalid(key, "want an absolute http(s) URL, got %q", u.Redacted())
	}
	return nil
}

// checkSet is APIBAN's rule for a set name under an API version.
func checkSet(version, set string) error { return apiban.CheckSet(version, set) }

// checkWord requires a non-empty value without whitespace: origin and
// scenario are matched verbatim by `cscli decisions list --origin` and by
// the bridge when it reads its own decisions back.
func checkWord(key, s string) error {
	switch {
	case s == "":
		return invalid(key, "required")
	case strings.ContainsFunc(s, unicode.IsSpace):
		return invalid(key, "must not contain whitespace, got %q", s)
	}
	return nil
}

// checkOrigins checks a list of decision origins to read: LAPI's stream
// takes them as one comma-separated filter and matches each verbatim.
func checkOrigins(key string, origins []string) []error {
	var errs []error
	for i, o := range origins {
		if o == "" || strings.ContainsFunc(o, unicode.IsSpace) || strings.Contains(o, ",") {
			errs = append(errs, invalid(fmt.Sprintf("%s[%d]", key, i), "want an origin such as apiban, crowdsec or cscli, got %q", o))
		}
	}
	return errs
}

// checkKeyText refuses the text of a key (a secret: never quoted) that
// cannot be what the operator meant: a ${...} reference that was not
// expanded, such as ${APIBAN-KEY}, or text the key's reader refuses (rule:
// apiban.CheckKey for APIBAN's keys, noWhitespace for LAPI's bouncer keys).
func checkKeyText(key, v string, rule func(string) error) error {
	if strings.Contains(v, "${") {
		return invalid(key, "holds an unexpanded ${...} reference")
	}
	if err := rule(v); err != nil {
		return invalid(key, "%v", err)
	}
	return nil
}

// noWhitespace is the rule of a LAPI bouncer key, sent in a header.
func noWhitespace(v string) error {
	if strings.ContainsFunc(v, unicode.IsSpace) {
		return errors.New("must not contain whitespace")
	}
	return nil
}

// checkFile requires that a named file exists and is not a directory, so
// that a wrong path fails at `-t`, not at the first TLS handshake.
func checkFile(key, path string) error {
	if path == "" {
		return nil
	}
	info, err := os.Stat(path)
	switch {
	case err != nil:
		return invalid(key, "%v", err)
	case info.IsDir():
		return invalid(key, "%q is a directory", path)
	}
	return nil
}

// formatDuration prints a duration as a person writes it: "5m", "168h",
// "1h30m" rather than time.Duration's "5m0s", "168h0m0s".
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}
