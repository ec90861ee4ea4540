package apiban

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
)

// Defaults of the tuning fields, which no operator sets: New fills them
// when they are zero.
const (
	DefaultBackoffBase  = time.Second
	DefaultBackoffMax   = 30 * time.Second
	DefaultMaxBodyBytes = 8 << 20
)

// Config is what the client needs. New trusts it: every field an operator
// sets comes from the configuration, which checks it once (with the rules
// in rules.go where they are APIBAN's) and holds its default. Only the
// tuning fields (BackoffBase, BackoffMax, MaxBodyBytes), the logger and
// the HTTP client may be left zero.
type Config struct {
	// BaseURL is the scheme and host, e.g. https://apiban.org (CheckBaseURL).
	BaseURL string
	// APIKey is the account key (CheckKey). It never appears in errors or
	// logs.
	APIKey string
	// Version is "v1" (key in the URL path) or "v2" (Bearer header).
	Version string
	// Set is the v2 dataset (CheckSet); v1 serves only sip.
	Set string
	// MaxRequests is the most requests sent in any RateWindow; 0 turns
	// client-side pacing off. Ignored when Gate is set.
	MaxRequests int
	// Gate, when set, paces this client together with every other client
	// given the same Gate (several sets, one key); nil means a gate of
	// its own from MaxRequests and RateWindow.
	Gate *Gate
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
	// MaxPages is the most full pages (of PageSize entries) one pass
	// through the feed may take; the next page must end the list
	// (CheckMaxPages).
	MaxPages int
	// HTTPClient sends the requests; nil means a plain http.Client.
	HTTPClient *http.Client
	// Logger gets a debug line per request and a warning per retry; nil
	// discards them.
	Logger logrus.FieldLogger
}

// ErrInvalidConfig is wrapped by the errors of New: a tuning field that
// would break the retries, a programming error.
var ErrInvalidConfig = errors.New("apiban: invalid config")

// prepared fills what a caller may leave out and normalises BaseURL, to
// which request paths are appended.
func (c Config) prepared() Config {
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
	setDefault(&c.BackoffBase, DefaultBackoffBase)
	setDefault(&c.BackoffMax, DefaultBackoffMax)
	setDefault(&c.MaxBodyBytes, DefaultMaxBodyBytes)
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

// checkTuning refuses tuning values that would make the backoff negative
// or a body unreadable.
func (c Config) checkTuning() error {
	checks := []struct {
		field string
		err   error
	}{
		{"BackoffBase", positive(c.BackoffBase)},
		{"BackoffMax", atLeast(c.BackoffMax, c.BackoffBase, "BackoffBase")},
		{"MaxBodyBytes", positive(c.MaxBodyBytes)},
	}
	for _, ch := range checks {
		if ch.err != nil {
			return fmt.Errorf("%w: %s: %w", ErrInvalidConfig, ch.field, ch.err)
		}
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
