package bridge

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bridge/allowlist"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bridge/lapi"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bridge/state"
)

// The state file is a cache of what LAPI holds; LAPI is the truth, and it
// loses decisions behind the bridge's back (its alert flush, deletes, a
// restored or new database). Each sync checks the cache with one small
// request and, when LAPI has lost anything, reads this origin's decisions
// back and pushes what is missing at once (docs/reliability.md).

// edgeSlack leaves out of the check alerts whose decisions all end this
// soon: LAPI may already count them ended.
const edgeSlack = time.Minute

// verify makes the state match LAPI before anything is pushed: it reads
// LAPI back when a reason is already known (no state, an unconfirmed push,
// a full sync) or when the check finds a loss, and repairs what was lost.
func (e *Engine) verify(ctx context.Context, allow *allowlist.Set, rep *Report) error {
	why := e.readBack
	if why == "" && rep.Full {
		why = "full sync"
	}
	if why == "" {
		lost, err := e.check(ctx)
		if err != nil {
			// The check only guards against losses: a LAPI too slow to
			// answer it (SQLite with a million decisions) must not stop
			// new bans. The next sync checks again.
			e.opts.Log.WithError(err).Warn("could not check LAPI against the state file: syncing without the check")
			return nil
		}
		why = lost
	}
	if why == "" {
		return nil
	}
	rep.ReadBack = why
	return e.repair(ctx, allow, why, rep)
}

// check compares LAPI's oldest or newest alert of this origin (in turn,
// one request a sync) with the state's, and says why LAPI must be read
// back, or "" when the two agree.
func (e *Engine) check(ctx context.Context) (string, error) {
	now := e.opts.Now()
	oldest, newest, ok := e.expectedEdges(now)
	if !ok {
		if e.st.Active.Len() > 0 && len(e.st.Alerts) == 0 {
			// A state file from before alert IDs were kept.
			return "the state file records no alert IDs", nil
		}
		return "", nil // nothing this bridge pushed is still due in LAPI
	}
	checkNewest := e.checkNewest
	e.checkNewest = !e.checkNewest
	id, found, err := e.lapi.Edge(ctx, checkNewest)
	if errors.Is(err, lapi.ErrEdgeUnsupported) {
		return "this LAPI cannot list one alert", nil
	}
	if err != nil {
		return "", err
	}
	switch {
	case !found:
		return "LAPI holds no active decision of this origin and scenario", nil
	case checkNewest && id < newest:
		return fmt.Sprintf("LAPI lost the newest alert (%d; its newest is %d)", newest, id), nil
	case !checkNewest && id > oldest:
		return fmt.Sprintf("LAPI lost the oldest alert (%d; its oldest is %d)", oldest, id), nil
	case checkNewest && id > newest:
		// Another writer of this origin, or a push whose answer was
		// lost: not a loss, but the state must learn it.
		if _, known := e.st.Alerts[id]; !known {
			return fmt.Sprintf("LAPI's newest alert of this origin and scenario (%d) is newer than any the state knows", id), nil
		}
	}
	// An unknown alert older than the state's oldest is one the state
	// already let go of (its decisions end within edgeSlack, or LAPI's
	// clock is behind), or another writer's: nothing of ours is missing.
	return "", nil
}

// expectedEdges returns the lowest and highest IDs of the alerts whose
// decisions should still be active past edgeSlack.
func (e *Engine) expectedEdges(now time.Time) (oldest, newest int64, ok bool) {
	for id, until := range e.st.Alerts {
		if !until.After(now.Add(edgeSlack)) {
			continue
		}
		if !ok || id < oldest {
			oldest = id
		}
		if !ok || id > newest {
			newest = id
		}
		ok = true
	}
	return oldest, newest, ok
}

// repair reads this origin's decisions back, makes them the state, and
// pushes again, with what was left of them, the decisions the state holds
// and LAPI lost.
func (e *Engine) repair(ctx context.Context, allow *allowlist.Set, why string, rep *Report) error {
	now := e.opts.Now()
	held, err := e.lapi.Active(ctx, now)
	if err != nil {
		return err
	}
	lost := e.lost(held, allow, now)
	inLAPI := len(held.Active)
	e.st.Active = state.ActiveSet{} // not three sets at once
	e.st.Active, e.st.Alerts = compactActive(held.Active), held.Alerts
	log := e.opts.Log.WithFields(logrus.Fields{"reason": why, "active_in_lapi": inLAPI, "lost": len(lost)})
	if e.opts.DryRun {
		for _, d := range lost {
			rep.WouldPush = append(rep.WouldPush, d.Prefix)
		}
		log.Info("read this bridge's decisions back from LAPI (dry run: nothing repaired)")
		e.readBack = ""
		return nil
	}
	// A replacement, not an addition: a new snapshot.
	if err := e.snapshot(); err != nil {
		return err
	}
	if err := e.endPush(); err != nil {
		return err
	}
	e.readBack = ""
	if len(lost) == 0 {
		log.Info("read this bridge's decisions back from LAPI: nothing lost")
		return nil
	}
	for chunk := range slices.Chunk(lost, max(e.opts.BatchSize, 1)) {
		if err := e.push(ctx, chunk); err != nil {
			return err
		}
		rep.Repaired += len(chunk)
		e.st.LastRepair, e.st.LastRepaired = now, rep.Repaired
		if err := e.record(); err != nil {
			return err
		}
		if err := e.endPush(); err != nil {
			return err
		}
	}
	log.WithField("repaired", rep.Repaired).Warn("LAPI had lost decisions of this bridge: pushed them again")
	return nil
}

// compactActive copies LAPI's answer into the state's form. The map is
// dropped by the caller right after: the peak is the map and the compact
// set (about a quarter of the map's size), not two maps.
func compactActive(held map[netip.Prefix]time.Time) state.ActiveSet {
	out := state.NewActiveSet(len(held))
	for p, until := range held {
		out.Set(p, until)
	}
	return out
}

// lost lists what the state holds, still active past edgeSlack and still
// allowed, that LAPI no longer holds, with the time left of each.
func (e *Engine) lost(held lapi.Holdings, allow *allowlist.Set, now time.Time) []lapi.Decision {
	var out []lapi.Decision
	for p, until := range e.st.Active.All() {
		left := until.Sub(now)
		if left <= edgeSlack || held.Active[p].After(now) {
			continue
		}
		if _, _, hit := allow.Match(p); hit || e.opts.tooWide(p) || e.neverBan(p) {
			continue // the operator's allowlist wins over a repair
		}
		out = append(out, lapi.Decision{Prefix: p, Duration: left})
	}
	// Sorted, so that a repair pushes, logs and tests the same way twice.
	slices.SortFunc(out, func(a, b lapi.Decision) int { return a.Prefix.Compare(b.Prefix) })
	return out
}
