package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bouncer"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bridge"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bridge/lapi"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bridge/state"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/config"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/source"
)

// check answers, for one address: does APIBAN list it, would the bridge
// refuse it (allowlists), which active decisions cover it in LAPI and
// whether the bridge's state holds it, and whether the embedded bouncer's
// kernel sets do. It fails when a source cannot be asked, so a script can
// tell "no" from "do not know"; the kernel sets are the exception (see
// kernelRows).
func check(ctx context.Context, cfg *config.Config, lc *lapi.Client, arg string, w io.Writer, log *logrus.Logger) bool {
	addr, err := source.ParseAddr(arg)
	if err != nil {
		row(w, "address", "%q is not an IP address", arg)
		return false
	}
	now := time.Now()
	ok := true
	row(w, "address", "%s", addr)

	if feed, err := newFeed(cfg, log); err != nil {
		row(w, "APIBAN", "error: %v", err)
		ok = false
	} else if listed, err := feed.Check(ctx, addr); err != nil {
		row(w, "APIBAN", "error: %v", err)
		ok = false
	} else {
		row(w, "APIBAN", "%s", map[bool]string{true: "listed (set " + cfg.Feeds()[0].Set + ")", false: "not listed"}[listed])
	}

	single := netip.PrefixFrom(addr, addr.BitLen())
	allowed := false
	if allow, _, err := bridge.Allowlist(ctx, lc, cfg.Allowlist.Prefixes, cfg.Allowlist.LAPIAllowlists, now); err != nil {
		row(w, "allowlisted", "unknown: %v", err)
		ok = false
	} else if why, detail, hit := allow.Match(single); hit {
		allowed = true
		row(w, "allowlisted", "yes: %s (%s): never pushed, nor pushed again by a repair", why, detail)
	} else {
		row(w, "allowlisted", "no")
	}

	if why, detail, hit := neverBan(ctx, cfg, log).Match(single); hit {
		allowed = true
		row(w, "never banned", "yes: %s (%s): neither pushed by the bridge nor enforced by its bouncer", why, detail)
	} else {
		row(w, "never banned", "no")
	}

	found, lookupErr := lc.Lookup(ctx, addr)
	switch {
	case lookupErr != nil:
		row(w, "LAPI decisions", "unknown: %v", lookupErr)
		ok = false
	case len(found) == 0:
		row(w, "LAPI decisions", "none active")
	default:
		for i, d := range found {
			key := ""
			if i == 0 {
				key = "LAPI decisions"
			}
			// Quoted: origins and scenarios are whatever LAPI's writers
			// sent.
			row(w, key, "%q by origin %q (%q, %s %q, %s left)", d.Type, d.Origin, d.Scenario, d.Scope, d.Value, d.Left.Round(time.Second))
		}
	}
	feeds := cfg.Feeds()
	for _, f := range feeds {
		key := "bridge state"
		if len(feeds) > 1 {
			key += " (" + f.Set + ")"
		}
		held := lookupErr == nil && slices.ContainsFunc(found, func(d lapi.Found) bool {
			return d.Origin == cfg.Decisions.Origin && d.Scenario == f.Scenario
		})
		stateRow(w, key, f.StateFile, single, now, lookupErr == nil && !held && !allowed)
	}
	kernelRows(ctx, cfg.Bouncer, addr, w, newBackend)
	return ok
}

// kernelRows says which elements of the embedded bouncer's kernel sets
// hold addr, read from the kernel without changing anything. A kernel that
// cannot be asked (not root, no nftables) is reported on the row and does
// not fail check: the other answers stand on their own.
func kernelRows(ctx context.Context, bc config.Bouncer, addr netip.Addr, w io.Writer, open func(config.Bouncer) (bouncer.Backend, error)) {
	const key = "kernel set"
	if !bc.Enabled {
		row(w, key, "n/a (bouncer.enabled is false)")
		return
	}
	backend, err := open(bc)
	if err != nil {
		row(w, key, "unknown: %v", err)
		return
	}
	defer backend.Close()
	looker, ok := backend.(bouncer.Looker)
	if !ok {
		row(w, key, "unknown (the %s backend cannot be asked)", backend.Name())
		return
	}
	found, err := looker.Lookup(ctx, addr)
	switch {
	case errors.Is(err, bouncer.ErrNotLoaded):
		row(w, key, "not loaded (bouncer not running, or disabled): %s", strings.TrimPrefix(err.Error(), bouncer.ErrNotLoaded.Error()+": "))
	case errors.Is(err, syscall.EPERM):
		row(w, key, "unknown: %v (reading the kernel sets needs root)", err)
	case err != nil:
		row(w, key, "unknown: %v", err)
	case len(found) == 0:
		row(w, key, "not in the kernel sets (%s %s-*)", bc.Mode, bc.SetPrefix)
	default:
		for i, m := range found {
			k := ""
			if i == 0 {
				k = key
			}
			detail := ""
			if m.Origin != "" {
				// Read back from the kernel: quoted, so that no byte of it
				// reaches the terminal as a control character.
				detail = fmt.Sprintf(", origin %q", m.Origin)
			}
			if m.Left > 0 {
				detail += fmt.Sprintf(", %s left", m.Left.Round(time.Second))
			}
			row(w, k, "in %s (%s%s)", m.Set, m.Prefix, detail)
		}
	}
}

// stateRow says what the state file at path records of single; lost says
// LAPI was asked and holds no decision of this set for it.
func stateRow(w io.Writer, key, path string, single netip.Prefix, now time.Time, lost bool) {
	st, err := state.Load(path)
	switch {
	case errors.Is(err, state.ErrNotExist):
		row(w, key, "no state file yet (%s)", path)
	case err != nil:
		row(w, key, "unknown: %v", err)
	case !st.ActiveAt(single, now):
		row(w, key, "not pushed by this bridge")
	case lost:
		// docs/operations.md: the operator-delete contract.
		row(w, key, "pushed until %s, but LAPI no longer holds it (lost, or `cscli decisions delete`): "+
			"the next repair pushes it again; to keep it out, add it to `cscli allowlists` or allowlist.cidrs",
			st.Active.Until(single).Format(time.RFC3339))
	default:
		row(w, key, "pushed, decision until %s", st.Active.Until(single).Format(time.RFC3339))
	}
}
