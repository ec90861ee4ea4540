package lapi

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// Edge returns the ID of the oldest (or, with newest, the newest) alert
// that still carries an active decision of this origin and scenario
// (LAPI 1.4.6 and 1.7.8 match scenario= against the alert's decisions),
// without its
// decisions: one small request whatever the list's size, which is what the
// engine's per-sync check of its state file costs (docs/reliability.md).
// found is false when LAPI holds no such alert.
func (c *Client) Edge(ctx context.Context, newest bool) (id int64, found bool, err error) {
	ctx, cancel := c.deadline(ctx)
	defer cancel()
	sort := "ASC"
	if newest {
		sort = "DESC"
	}
	q := url.Values{
		"origin":              {c.opts.Origin},
		"scenario":            {c.opts.Scenario},
		"has_active_decision": {"true"},
		"sort":                {sort},
		"limit":               {"1"},
	}
	withDecisions := c.edgeWithDecisions.Load()
	if !withDecisions {
		q.Set("with_decisions", "false")
	}
	alerts, status, err := c.edge(ctx, q)
	if err != nil && !withDecisions && status >= 400 && strings.Contains(err.Error(), "with_decisions") {
		// LAPI before 1.5 refuses with_decisions as an unknown filter
		// (1.4.6: 500 "Filter parameter 'with_decisions' is unknown"): ask
		// with the alert's decisions, which is still one request.
		c.edgeWithDecisions.Store(true)
		q.Del("with_decisions")
		alerts, _, err = c.edge(ctx, q)
	}
	if err != nil {
		return 0, false, fmt.Errorf("checking the %s alert of origin %q: %w", edgeName(newest), c.opts.Origin, err)
	}
	switch {
	case len(alerts) == 0:
		return 0, false, nil
	case len(alerts) > 1:
		// LAPI before 1.5 ignores sort and limit on this route: its
		// answer cannot tell which alert is at the edge.
		return 0, false, fmt.Errorf("checking the %s alert of origin %q: %w (%d alerts for limit=1)",
			edgeName(newest), c.opts.Origin, ErrEdgeUnsupported, len(alerts))
	case alerts[0].ID <= 0:
		return 0, false, fmt.Errorf("checking the %s alert of origin %q: LAPI answered the alert ID %d", edgeName(newest), c.opts.Origin, alerts[0].ID)
	}
	return alerts[0].ID, true, nil
}

type alertID struct {
	ID int64 `json:"id"`
}

// edge sends one GET /v1/alerts and returns the IDs it answered, and the
// HTTP status when LAPI answered one.
func (c *Client) edge(ctx context.Context, q url.Values) ([]alertID, int, error) {
	req, err := c.api.PrepareRequest(ctx, http.MethodGet, c.api.URLPrefix+"/alerts?"+q.Encode(), nil)
	if err != nil {
		return nil, 0, err
	}
	var alerts []alertID
	resp, err := c.api.Do(ctx, req, &alerts)
	status := 0
	if resp != nil && resp.Response != nil {
		status = resp.Response.StatusCode
	}
	if err != nil {
		return nil, status, cleanErr(err)
	}
	return alerts, status, nil
}

// ErrEdgeUnsupported means LAPI's answer to Edge cannot be trusted: the
// caller reads everything back instead.
var ErrEdgeUnsupported = fmt.Errorf("this LAPI cannot list only the oldest or newest alert")

func edgeName(newest bool) string {
	if newest {
		return "newest"
	}
	return "oldest"
}
