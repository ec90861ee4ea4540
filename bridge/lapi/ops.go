package lapi

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"time"

	"github.com/crowdsecurity/crowdsec/pkg/apiclient"
)

// Found is one active decision that covers an address, whatever its origin.
type Found struct {
	Origin   string
	Scenario string
	Type     string
	Scope    string
	Value    string
	Left     time.Duration
}

// Lookup lists the active decisions of every origin that cover addr (an
// Ip decision for it, or a Range holding it), for `check`.
func (c *Client) Lookup(ctx context.Context, addr netip.Addr) ([]Found, error) {
	ctx, cancel := c.deadline(ctx)
	defer cancel()
	active, contains, unlimited := true, true, 0
	alerts, _, err := c.api.Alerts.List(ctx, apiclient.AlertsListOpts{
		IPEquals: addr.String(), Contains: &contains, ActiveDecisionEquals: &active, Limit: &unlimited,
	})
	if err != nil {
		return nil, fmt.Errorf("looking up %s in LAPI: %w", addr, cleanErr(err))
	}
	var out []Found
	for _, a := range *alerts {
		// An alert of this bridge carries a thousand decisions: keep
		// those that cover addr.
		for _, d := range a.Decisions {
			p, left, ok := activeDecision(d)
			if !ok || !p.Contains(addr.Unmap()) && !p.Contains(addr) {
				continue
			}
			out = append(out, Found{Origin: deref(d.Origin), Scenario: deref(d.Scenario), Type: deref(d.Type),
				Scope: deref(d.Scope), Value: *d.Value, Left: left})
		}
	}
	return out, nil
}

// DeleteOrigin expires every decision of this bridge's origin (DELETE
// /v1/decisions?origin=...), or with Options.SharedOrigin only those of
// its scenario too (&scenario=..., a filter LAPI 1.4.6 and 1.7.8 both
// apply); bouncers see them as deleted. Alerts are left
// for LAPI's own flush: deleting them would hide the expiry from bouncers.
func (c *Client) DeleteOrigin(ctx context.Context) (int, error) {
	ctx, cancel := c.deadline(ctx)
	defer cancel()
	opts := apiclient.DecisionsDeleteOpts{OriginEquals: c.opts.Origin}
	what := fmt.Sprintf("origin %q", c.opts.Origin)
	if c.opts.SharedOrigin {
		opts.ScenarioEquals = c.opts.Scenario
		what += fmt.Sprintf(", scenario %q", c.opts.Scenario)
	}
	resp, _, err := c.api.Decisions.Delete(ctx, opts)
	if err != nil {
		return 0, fmt.Errorf("expiring the decisions of %s: %w", what, cleanErr(err))
	}
	n, err := strconv.Atoi(resp.NbDeleted)
	if err != nil {
		return 0, fmt.Errorf("expiring the decisions of %s: LAPI answered a count of %q", what, resp.NbDeleted)
	}
	return n, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
