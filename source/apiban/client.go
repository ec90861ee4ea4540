// Package apiban is the APIBAN feed: a client of the v1 and v2 list APIs
// that implements source.Source. It paces itself under the service's
// rate limit, retries what may pass, classifies what fails (see the Err
// variables), parses entries strictly, and keeps the API key out of every
// error and log line.
package apiban

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/source"
)

// StartCursor is the ID that asks for the list from its beginning.
const StartCursor = "100"

// Client is an APIBAN feed. It is safe for concurrent use; its requests
// go out one at a time, which the rate limit would impose anyway.
type Client struct {
	cfg   Config
	log   logrus.FieldLogger
	clock Clock
	// gate serialises and paces the requests, with those of the other
	// clients sharing it.
	gate *Gate
	// pass bounds the walk through the feed that Next is part of.
	pass passTracker
	// secrets are the forms of the key that must never be shown.
	secrets []string

	requests    atomic.Int64
	rateLimited atomic.Int64
}

var _ source.Source = (*Client)(nil)

// Option changes a Client at construction.
type Option func(*Client)

// WithClock replaces the wall clock, for tests.
func WithClock(c Clock) Option { return func(cl *Client) { cl.clock = c } }

// New returns a client of cfg, which it trusts (see Config).
func New(cfg Config, opts ...Option) (*Client, error) {
	cfg = cfg.prepared()
	if err := cfg.checkTuning(); err != nil {
		return nil, err
	}
	c := &Client{
		cfg:   cfg,
		log:   cfg.Logger.WithField("source", "apiban"),
		clock: realClock{},
		gate:  cfg.Gate,
		// v1 sends the key path-escaped, so that form can be quoted too.
		secrets: []string{cfg.APIKey, url.PathEscape(cfg.APIKey)},
	}
	if c.gate == nil {
		c.gate = NewGate(cfg.MaxRequests, cfg.RateWindow)
	}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// Set is the dataset this client pulls.
func (c *Client) Set() string { return c.cfg.Set }

// Requests is the number of HTTP requests sent so far.
func (c *Client) Requests() int { return int(c.requests.Load()) }

// RateLimited is the number of 429 answers seen so far.
func (c *Client) RateLimited() int { return int(c.rateLimited.Load()) }

// Next fetches the page after cursor ("" is the start of the list),
// retrying as configured. Called with the cursor of the page it returned
// last, it continues a pass through the feed, which it bounds: a cursor
// that comes back, or a pass longer than Config.MaxPages full pages, is an
// ErrBadResponse and that page is not returned.
func (c *Client) Next(ctx context.Context, cursor string) (source.Page, error) {
	if cursor == "" {
		cursor = StartCursor
	}
	c.pass.begin(cursor)
	t := c.target(cursor)
	b, err := c.fetch(ctx, t, cursor)
	if err == nil {
		if f := c.pass.take(cursor, b, c.cfg.MaxPages); f != nil {
			f.where = t.String()
			err = scrub(f, c.secrets)
		}
	}
	if err != nil {
		c.pass.reset()
		return source.Page{}, err
	}
	return b, nil
}

// fetch is one page, retried as configured.
func (c *Client) fetch(ctx context.Context, t target, cursor string) (source.Page, error) {
	// max: a negative MaxRetries (a caller's bug) is one attempt, not
	// retries without end.
	attempts := max(c.cfg.MaxRetries, 0) + 1
	for n := 1; ; n++ {
		b, f := c.attempt(ctx, t, cursor, n)
		if f == nil {
			return b, nil
		}
		if err := ctx.Err(); err != nil {
			return source.Page{}, c.canceled(t, err)
		}
		if !f.retry || n == attempts {
			return source.Page{}, scrub(fmt.Errorf("%w (attempt %d of %d)", f, n, attempts), c.secrets)
		}
		wait := c.retryDelay(f, n)
		c.log.WithFields(logrus.Fields{
			"attempt": n, "max_attempts": attempts, "wait": wait.String(),
		}).WithError(f).Warn("apiban request failed, retrying")
		if err := c.clock.Sleep(ctx, wait); err != nil {
			return source.Page{}, c.canceled(t, err)
		}
	}
}

// attempt is one paced request and its classification.
func (c *Client) attempt(ctx context.Context, t target, cursor string, n int) (source.Page, *failure) {
	r, f := c.pacedExchange(ctx, t)
	var b source.Page
	if f == nil {
		if r.status == http.StatusTooManyRequests {
			c.rateLimited.Add(1)
		}
		b, f = c.outcome(r, cursor)
	}
	if f != nil {
		f.where = t.String()
	}
	c.logRequest(t, cursor, n, r, b, f)
	return b, f
}

// pacedExchange waits for the client's turn and for room in the pacing
// window, then does one exchange and stamps it.
func (c *Client) pacedExchange(ctx context.Context, t target) (response, *failure) {
	select {
	case c.gate.turn <- struct{}{}:
	case <-ctx.Done():
		return response{}, &failure{class: ErrTransport, detail: "waiting for a turn", cause: ctx.Err()}
	}
	defer func() { <-c.gate.turn }()
	for d := c.gate.pacer.delay(c.clock.Now()); d > 0; d = c.gate.pacer.delay(c.clock.Now()) {
		c.log.WithField("wait", d.String()).Debug("apiban pacing")
		if err := c.clock.Sleep(ctx, d); err != nil {
			return response{}, &failure{class: ErrTransport, detail: "waiting for the rate window", cause: err}
		}
	}
	r, f := c.exchange(ctx, t)
	c.gate.pacer.record(c.clock.Now())
	return r, f
}

// retryDelay is the wait after failed attempt n (1-based): a whole rate
// window after a 429, else exponential backoff with jitter.
func (c *Client) retryDelay(f *failure, n int) time.Duration {
	if f != nil && f.class == ErrRateLimited {
		return c.cfg.RateWindow
	}
	d := c.cfg.BackoffMax
	if shift := n - 1; shift < 32 && c.cfg.BackoffBase<<shift < c.cfg.BackoffMax && c.cfg.BackoffBase<<shift > 0 {
		d = c.cfg.BackoffBase << shift
	}
	// Half fixed, half random: retries from several deployments sharing
	// a key spread out, yet none comes back too soon.
	return d/2 + rand.N(d/2+1)
}

// canceled words the end of ctx; it wraps the context's error only.
func (c *Client) canceled(t target, err error) error {
	return fmt.Errorf("apiban: %s: gave up: %w", t, err)
}

func (c *Client) logRequest(t target, cursor string, n int, r response, b source.Page, f *failure) {
	entry := c.log.WithFields(logrus.Fields{
		"method": t.method, "url": t.shown, "cursor": cursor, "attempt": n, "status": r.status,
	})
	if f != nil {
		entry = entry.WithField("error", f.Error())
	} else {
		entry = entry.WithFields(logrus.Fields{"entries": len(b.Prefixes), "invalid": b.Invalid, "next": b.Cursor, "last": b.Last})
	}
	entry.Debug("apiban request")
}
