package main

import (
	"context"
	"io"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bridge/state"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/config"
)

// flush expires this bridge's decisions in LAPI and then resets the state
// file, so that the next sync pulls the whole list and pushes it again;
// with several sets, each set's (its scenario) and each state file. It
// takes the state files' locks, so it refuses while a daemon or a sync
// runs: they would keep their own idea of what is active.
func flush(ctx context.Context, cfg *config.Config, w io.Writer) bool {
	feeds := cfg.Feeds()
	for _, f := range feeds {
		lock, err := state.Acquire(f.StateFile)
		if err != nil {
			row(w, "flush", "refused: %v", err)
			return false
		}
		defer lock.Release()
	}
	for _, f := range feeds {
		if !flushSet(ctx, cfg, f, len(feeds) > 1, w) {
			return false
		}
	}
	return true
}

func flushSet(ctx context.Context, cfg *config.Config, f config.Feed, several bool, w io.Writer) bool {
	lc, err := newSetLAPI(cfg, f)
	if err != nil {
		row(w, "flush", "failed: %v", err)
		return false
	}
	n, err := lc.DeleteOrigin(ctx)
	if err != nil {
		row(w, "flush", "failed: %v", err)
		return false
	}
	if several {
		row(w, "LAPI", "expired %d decisions of origin %s, scenario %s", n, cfg.Decisions.Origin, f.Scenario)
	} else {
		row(w, "LAPI", "expired %d decisions of origin %s", n, cfg.Decisions.Origin)
	}
	if err := state.New().Save(f.StateFile); err != nil {
		row(w, "state file", "not reset: %v", err)
		return false
	}
	if err := state.EndPush(f.StateFile); err != nil {
		row(w, "state file", "push marker not cleared: %v", err)
		return false
	}
	row(w, "state file", "reset (%s): the next sync pushes the whole list again", f.StateFile)
	return true
}
