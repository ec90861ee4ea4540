package apiban

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"

	"github.com/sirupsen/logrus"
)

// Defaults applied by New to zero fields of Config.
const (
	DefaultBaseURL      = "https://apiban.org"
	DefaultVersion      = "v2"
	DefaultSet          = "sip"
	DefaultRateWindow   = 2 * time.Minute
	DefaultTimeout      = 30 * time.Second
	DefaultBackoffBase  = time.Second
	DefaultBackoffMax   = 30 * time.Second
	DefaultMaxBodyBytes = 8 << 20
	// DefaultMaxPages is in pass.go, with its reasoning.
)

// Config is what the client needs. Zero fields get the defaults above,
// except MaxRequests (0: no pacing) and MaxRetries (0: one attempt).
type Config struct {
	// BaseURL is the scheme and host, e.g. https://apiban.org.
	BaseURL string
	// APIKey is the account key. It never appears in errors or logs.
	APIKey string
	// Version is "v1" (key in the URL path) or "v2" (Bearer header).
	Version string
	// Set is the v2 dataset: "sip", "http" or "all"; v1 serves only sip.
	Set string
	// MaxRequests is the most requests sent in any RateWindow; 0 turns
	// client-side pacing off.
	MaxRequests int
	// RateWindow is the pacing window, and the wait after a 429.
	RateWindow time.Duration
	// Timeout bounds one HTTP request, body included.
	Timeout time.Duration
	// MaxRetries is how many times a failed request is tried again.
	MaxRetries int
	// BackoffBase is the first retry delay; it doubles per retry, with
	// jitter, up to BackoffMax.
	BackoffBase time.Duration
	BackoffMax  time.Duration
	// MaxBodyBytes caps a response body.
	MaxBodyBytes int64
	// MaxPages is the most full pages (of BatchSize entries) one pass
	// through the feed may take; the next page must end the list.
	MaxPages int
	// HTTPClient sends the requests; nil means a plain http.Client.
	HTTPClient *http.Client
	// Logger gets a debug line per request and a warning per retry; nil
	// discards them.
	Logger logrus.FieldLogger
}

// ErrInvalidConfig is wrapped by every validation error of New.
var ErrInvalidConfig = errors.New("apiban: invalid config")

func (c Config) withDefaults() Config {
	c.BaseURL = strings.TrimRight(strings.TrimSpace(c.BaseURL), "/")
	if c.BaseURL == "" {
		c.BaseURL = DefaultBaseURL
	}
	setDefault(&c.Version, DefaultVersion)
	setDefault(&c.Set, DefaultSet)
	setDefault(&c.RateWindow, DefaultRateWindow)
	setDefault(&c.Timeout, DefaultTimeout)
	setDefault(&c.BackoffBase, DefaultBackoffBase)
	setDefault(&c.BackoffMax, DefaultBackoffMax)
	setDefault(&c.MaxBodyBytes, DefaultMaxBodyBytes)
	setDefault(&c.MaxPages, DefaultMaxPages)
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{}
	}
	// A copy, so that the caller's client keeps its own policy.
	hc := *c.HTTPClient
	hc.CheckRedirect = noRedirects
	c.HTTPClient = &hc
	if c.Logger == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		c.Logger = l
	}
	return c
}

func setDefault[T comparable](field *T, def T) {
	var zero T
	if *field == zero {
		*field = def
	}
}

// validate names the first bad field. It runs after withDefaults.
func (c Config) validate() error {
	checks := []struct {
		field string
		err   error
	}{
		{"BaseURL", validBaseURL(c.BaseURL)},
		{"APIKey", validKey(c.APIKey)},
		{"Version", oneOf(c.Version, "v1", "v2")},
		{"Set", validSet(c.Version, c.Set)},
		{"MaxRequests", notNegative(c.MaxRequests)},
		{"RateWindow", positive(c.RateWindow)},
		{"Timeout", positive(c.Timeout)},
		{"MaxRetries", notNegative(c.MaxRetries)},
		{"BackoffBase", positive(c.BackoffBase)},
		{"BackoffMax", atLeast(c.BackoffMax, c.BackoffBase, "BackoffBase")},
		{"MaxBodyBytes", positive(c.MaxBodyBytes)},
		{"MaxPages", notNegative(c.MaxPages)},
	}
	for _, ch := range checks {
		if ch.err != nil {
			return fmt.Errorf("%w: %s: %w", ErrInvalidConfig, ch.field, ch.err)
		}
	}
	return nil
}

func validBaseURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return errors.New("not a URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("scheme must be http or https, got %q", u.Scheme)
	}
	if u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return errors.New("want scheme://host[:port][/path] only")
	}
	return nil
}

// validKey refuses what cannot travel in a URL path segment or a header
// intact. The key itself is never quoted back.
func validKey(k string) error {
	if k == "" {
		return errors.New("required")
	}
	for _, r := range k {
		if r > unicode.MaxASCII || !unicode.IsPrint(r) || unicode.IsSpace(r) || r == '/' {
			return errors.New("must be printable ASCII without spaces or '/'")
		}
	}
	return nil
}

func validSet(version, set string) error {
	if version == "v1" && set != "sip" {
		return fmt.Errorf("v1 serves only sip, got %q", set)
	}
	return oneOf(set, "sip", "http", "all")
}

func oneOf(v string, allowed ...string) error {
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	return fmt.Errorf("must be one of %s, got %q", strings.Join(allowed, ", "), v)
}

func notNegative(n int) error {
	if n < 0 {
		return fmt.Errorf("must not be negative, got %d", n)
	}
	return nil
}

func positive[T int64 | time.Duration](v T) error {
	if v <= 0 {
		return fmt.Errorf("must be positive, got %v", v)
	}
	return nil
}

func atLeast(v, floor time.Duration, floorName string) error {
	if v < floor {
		return fmt.Errorf("must be at least %s (%s), got %s", floorName, floor, v)
	}
	return nil
}
