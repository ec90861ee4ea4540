package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bridge"
)

// round gathers the syncs of every set in one daemon round, so that
// metrics and /healthz see one sync per round: a set that failed is not
// hidden by the next set's success.
type round struct {
	sets    int
	seen    int
	rep     bridge.Report
	errs    []error
	cursors []string
}

// add records set's sync; it returns true with the round's report and
// error once every set has synced, and starts the next round.
func (r *round) add(set string, rep bridge.Report, err error) (bridge.Report, bool, error) {
	r.seen++
	r.rep = sumReports(r.rep, rep)
	r.cursors = append(r.cursors, set+":"+rep.Cursor)
	if err != nil {
		r.errs = append(r.errs, fmt.Errorf("set %s: %w", set, err))
	}
	if r.seen < r.sets {
		return bridge.Report{}, false, nil
	}
	out, outErr := r.rep, errors.Join(r.errs...)
	if r.sets > 1 {
		out.Cursor = strings.Join(r.cursors, " ")
	} else {
		out.Cursor = rep.Cursor
	}
	*r = round{sets: r.sets}
	return out, true, outErr
}

func sumReports(a, b bridge.Report) bridge.Report {
	a.Full = a.Full || b.Full
	a.Fetched += b.Fetched
	a.Invalid += b.Invalid
	a.Allowlisted += b.Allowlisted
	a.AlreadyActive += b.AlreadyActive
	a.Pushed += b.Pushed
	a.TooWide += b.TooWide
	a.Self += b.Self
	a.Repaired += b.Repaired
	if a.ReadBack == "" {
		a.ReadBack = b.ReadBack
	}
	a.Flood = a.Flood || b.Flood
	a.Requests += b.Requests
	a.Duration += b.Duration
	a.WouldPush = append(a.WouldPush, b.WouldPush...)
	return a
}
