// Package lapi is the bridge's side of the CrowdSec Local API: it logs in as
// a machine (pkg/apiclient handles the JWT and its refresh), pushes
// decisions carried by a few large alerts, reads back the decisions of its
// own origin (whole, or just the oldest or newest alert, to verify the
// state file: docs/reliability.md), and reads CrowdSec's allowlists. Every
// call has a deadline and every answer a size cap.
package lapi

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/crowdsecurity/crowdsec/pkg/apiclient"
	"github.com/crowdsecurity/crowdsec/pkg/fflag"
	"github.com/crowdsecurity/crowdsec/pkg/models"
	"github.com/go-openapi/strfmt"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bridge/allowlist"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/source"
)

// Options configure the client. Origin, Scenario, Type, BatchSize and
// Message shape what Push sends; each decision carries its own duration.
type Options struct {
	URL       string
	Login     string
	Password  string
	UserAgent string // must be name/version with exactly one '/'

	CertPath, KeyPath, CACertPath string
	InsecureSkipVerify            bool

	// Timeout bounds each call, login included (crowdsec.timeout).
	Timeout time.Duration

	// Origin and Scenario also bound what Edge, Active and DeleteOrigin
	// see: several sets share one origin, each under its own scenario,
	// and each engine checks and repairs only its own
	// (docs/architecture.md).
	Origin   string
	Scenario string
	// SharedOrigin says other sets push under this origin: DeleteOrigin
	// then expires only this scenario's decisions. Without it, it
	// expires the whole origin, decisions of an earlier scenario too.
	SharedOrigin bool
	Type         string
	// BatchSize (decisions.batch_size) is how many decisions one alert
	// carries.
	BatchSize int
	// Message describes the alerts in `cscli alerts list`.
	Message string
}

// Client talks to LAPI as a machine.
type Client struct {
	api  *apiclient.ApiClient
	opts Options
	// edgeWithDecisions: this LAPI refused with_decisions=false (before
	// 1.5), so Edge asks without it.
	edgeWithDecisions atomic.Bool
}

// New prepares a client; it logs in lazily on the first call.
func New(opts Options) (*Client, error) {
	u, err := url.Parse(opts.URL)
	if err != nil {
		return nil, fmt.Errorf("crowdsec.lapi_url %q: %w", opts.URL, err)
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/" // apiclient refuses base URLs without the slash
	}
	if strings.Count(opts.UserAgent, "/") != 1 {
		return nil, fmt.Errorf("user agent %q must be name/version", opts.UserAgent)
	}
	if opts.BatchSize <= 0 {
		return nil, fmt.Errorf("decisions.batch_size must be positive, got %d", opts.BatchSize)
	}
	if opts.Timeout <= 0 {
		return nil, fmt.Errorf("crowdsec.timeout must be positive, got %s", opts.Timeout)
	}
	tlsConf, err := tlsConfig(opts)
	if err != nil {
		return nil, err
	}
	// pkg/apiclient would otherwise retry a refused connection for minutes
	// (20s, 40s, 80s...) and resend a non-idempotent alert POST on its own.
	// The engine owns retries: it fails fast, reads LAPI back when a push's
	// outcome is unknown, and tries again on its own schedule.
	_ = fflag.DisableHttpRetryBackoff.Set(true)
	api := apiclient.NewClient(&apiclient.Config{
		MachineID:     opts.Login,
		Password:      strfmt.Password(opts.Password),
		URL:           u,
		VersionPrefix: "v1",
		UserAgent:     opts.UserAgent,
	})
	if err := setTLS(api, tlsConf); err != nil {
		return nil, err
	}
	plainRequestBodies(api)
	capAnswers(api)
	return &Client{api: api, opts: opts}, nil
}

// tlsConfig builds this client's TLS settings. Without ca_cert_path the
// system roots verify LAPI; with it, only that CA does.
func tlsConfig(o Options) (*tls.Config, error) {
	conf := &tls.Config{InsecureSkipVerify: o.InsecureSkipVerify}
	if o.CACertPath != "" {
		pem, err := os.ReadFile(o.CACertPath)
		if err != nil {
			return nil, fmt.Errorf("crowdsec.ca_cert_path: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("crowdsec.ca_cert_path %s: no certificate found", o.CACertPath)
		}
		conf.RootCAs = pool
	}
	if o.CertPath != "" {
		cert, err := tls.LoadX509KeyPair(o.CertPath, o.KeyPath)
		if err != nil {
			return nil, fmt.Errorf("crowdsec.cert_path/key_path: %w", err)
		}
		conf.Certificates = []tls.Certificate{cert}
	}
	return conf, nil
}

// setTLS gives the client its own TLS settings. pkg/apiclient only offers
// package-level ones (apiclient.CaCertPool, Cert, InsecureSkipVerify),
// which every client built later in the process inherits: setting them
// here would hand the machine certificate, CA or skip-verify to any other
// LAPI client of the process, and keep a previous client's certificate
// for a later one that has none. The transport NewClient built is the one
// the login and every request use.
func setTLS(api *apiclient.ApiClient, conf *tls.Config) error {
	jwt, ok := api.GetClient().Transport.(*apiclient.JWTTransport)
	if !ok {
		return fmt.Errorf("pkg/apiclient: unexpected transport %T", api.GetClient().Transport)
	}
	ht, ok := jwt.Transport.(*http.Transport)
	if !ok {
		return fmt.Errorf("pkg/apiclient: unexpected inner transport %T", jwt.Transport)
	}
	ht.TLSClientConfig = conf
	return nil
}

// Decision is one ban to push: what, and for how long from the push.
type Decision struct {
	Prefix   netip.Prefix
	Duration time.Duration
}

// deadline bounds one call by Options.Timeout: a LAPI that accepts the
// connection and never answers must fail the sync, not hang it.
func (c *Client) deadline(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.opts.Timeout)
}

// Push sends the decisions, BatchSize to an alert, all alerts in one
// request, and returns the IDs LAPI gave the alerts, each with the end of
// its longest decision. It is not idempotent: callers must not retry it
// blindly after an error whose outcome is unknown.
func (c *Client) Push(ctx context.Context, ds []Decision, now time.Time) (map[int64]time.Time, error) {
	if len(ds) == 0 {
		return nil, nil
	}
	ctx, cancel := c.deadline(ctx)
	defer cancel()
	req := make(models.AddAlertsRequest, 0, len(ds)/c.opts.BatchSize+1)
	var ends []time.Time
	for chunk := range slices.Chunk(ds, c.opts.BatchSize) {
		req = append(req, c.alert(chunk, now))
		ends = append(ends, lastEnd(chunk, now))
	}
	ids, _, err := c.api.Alerts.Add(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("pushing %d decisions in %d alerts: %w", len(ds), len(req), cleanErr(err))
	}
	if ids == nil || len(*ids) != len(req) {
		return nil, fmt.Errorf("pushing %d alerts: LAPI acknowledged %d", len(req), lenIDs(ids))
	}
	out := make(map[int64]time.Time, len(*ids))
	for i, id := range *ids {
		n, err := strconv.ParseInt(id, 10, 64)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("pushing %d alerts: LAPI answered the alert ID %q", len(req), id)
		}
		out[n] = ends[i]
	}
	return out, nil
}

func lastEnd(ds []Decision, now time.Time) time.Time {
	var last time.Duration
	for _, d := range ds {
		last = max(last, d.Duration)
	}
	return now.Add(last)
}

func lenIDs(ids *models.AddAlertsResponse) int {
	if ids == nil {
		return 0
	}
	return len(*ids)
}

func (c *Client) alert(ds []Decision, now time.Time) *models.Alert {
	stamp := now.UTC().Format(time.RFC3339)
	decisions := make([]*models.Decision, len(ds))
	for i, d := range ds {
		scope, value := ScopeValue(d.Prefix)
		// Whole seconds: LAPI parses Go durations, and a repair pushes
		// what is left of a decision, not a round number.
		duration := d.Duration.Round(time.Second).String()
		decisions[i] = &models.Decision{
			Duration: &duration,
			Origin:   &c.opts.Origin,
			Scenario: &c.opts.Scenario,
			Scope:    &scope,
			Type:     &c.opts.Type,
			Value:    &value,
		}
	}
	count := int32(len(ds))
	return &models.Alert{
		Capacity:        new(int32(0)),
		Decisions:       decisions,
		Events:          []*models.Event{},
		EventsCount:     &count,
		Leakspeed:       new(""),
		Message:         new(fmt.Sprintf("%s: %d addresses", c.opts.Message, len(ds))),
		Scenario:        &c.opts.Scenario,
		ScenarioHash:    new(""),
		ScenarioVersion: new(""),
		Simulated:       new(false),
		Source:          &models.Source{Scope: new(""), Value: new("")},
		StartAt:         &stamp,
		StopAt:          &stamp,
	}
}

// ScopeValue renders a prefix as a CrowdSec decision scope and value.
func ScopeValue(p netip.Prefix) (scope, value string) {
	if p.IsSingleIP() {
		return "Ip", p.Addr().String()
	}
	return "Range", p.String()
}

// Holdings is what LAPI holds for this bridge's origin.
type Holdings struct {
	// Active maps every prefix with an active decision to the end of its
	// longest one.
	Active map[netip.Prefix]time.Time
	// Alerts maps the ID of every alert carrying such a decision to the
	// end of its longest one.
	Alerts map[int64]time.Time
}

// Active reads back every active decision of this origin and scenario,
// and the alerts that carry them.
func (c *Client) Active(ctx context.Context, now time.Time) (Holdings, error) {
	ctx, cancel := c.deadline(ctx)
	defer cancel()
	active, unlimited := true, 0
	alerts, _, err := c.api.Alerts.List(ctx, apiclient.AlertsListOpts{
		OriginEquals:         c.opts.Origin,
		ScenarioEquals:       c.opts.Scenario,
		ActiveDecisionEquals: &active,
		Limit:                &unlimited,
	})
	if err != nil {
		return Holdings{}, fmt.Errorf("reading active decisions of origin %q, scenario %q: %w", c.opts.Origin, c.opts.Scenario, cleanErr(err))
	}
	out := Holdings{Active: make(map[netip.Prefix]time.Time), Alerts: make(map[int64]time.Time)}
	for _, a := range *alerts {
		for _, d := range a.Decisions {
			if until, ok := c.addActive(out.Active, d, now); ok && until.After(out.Alerts[a.ID]) {
				out.Alerts[a.ID] = until
			}
		}
	}
	return out, nil
}

// addActive records d in out when it is an active decision of this
// origin and scenario, and returns its end. LAPI's scenario filter picks
// alerts holding such a decision; an alert may hold others too.
func (c *Client) addActive(out map[netip.Prefix]time.Time, d *models.Decision, now time.Time) (time.Time, bool) {
	p, left, ok := activeDecision(d)
	if !ok || d.Origin == nil || *d.Origin != c.opts.Origin || d.Scenario == nil || *d.Scenario != c.opts.Scenario {
		return time.Time{}, false
	}
	until := now.Add(left)
	if until.After(out[p]) {
		out[p] = until
	}
	return until, true
}

// activeDecision is what a decision from LAPI bans and for how long; ok is
// false for an incomplete, unreadable or ended one, which is skipped.
func activeDecision(d *models.Decision) (p netip.Prefix, left time.Duration, ok bool) {
	if d == nil || d.Value == nil || d.Duration == nil {
		return netip.Prefix{}, 0, false
	}
	left, err := time.ParseDuration(*d.Duration)
	if err != nil || left <= 0 {
		return netip.Prefix{}, 0, false
	}
	p, err = source.ParsePrefix(*d.Value)
	return p, left, err == nil
}

// ErrAllowlistsUnsupported means the LAPI predates allowlists (before 1.6.6).
var ErrAllowlistsUnsupported = errors.New("this LAPI has no allowlists endpoint")

// Allowlists returns every unexpired entry of CrowdSec's allowlists.
func (c *Client) Allowlists(ctx context.Context, now time.Time) ([]allowlist.Entry, error) {
	ctx, cancel := c.deadline(ctx)
	defer cancel()
	lists, resp, err := c.api.Allowlists.List(ctx, apiclient.AllowlistListOpts{WithContent: true})
	if resp != nil && resp.Response != nil && resp.Response.StatusCode == http.StatusNotFound {
		return nil, ErrAllowlistsUnsupported
	}
	if err != nil {
		return nil, fmt.Errorf("reading CrowdSec allowlists: %w", cleanErr(err))
	}
	var out []allowlist.Entry
	for _, l := range *lists {
		for _, item := range l.Items {
			if item == nil || expired(item.Expiration, now) {
				continue
			}
			p, err := source.ParsePrefix(item.Value)
			if err != nil {
				continue // LAPI validated it; a value we cannot read bans nothing
			}
			out = append(out, allowlist.Entry{Prefix: p, Source: "allowlist " + l.Name})
		}
	}
	return out, nil
}

func expired(exp strfmt.DateTime, now time.Time) bool {
	t := time.Time(exp)
	return !t.IsZero() && t.Unix() > 0 && !t.After(now)
}

// cleanErr strips what must not reach logs from apiclient errors. The
// machine password travels only in the login body, which apiclient never
// quotes, so today this only unwraps URL errors to a short form.
func cleanErr(err error) error {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		return fmt.Errorf("%s %s: %w", uerr.Op, redactURL(uerr.URL), uerr.Err)
	}
	return err
}

func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	u.User = nil
	u.RawQuery = ""
	return u.String()
}
