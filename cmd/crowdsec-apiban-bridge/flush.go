package main

import (
	"context"
	"io"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bridge/lapi"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bridge/state"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/config"
)

// flush expires this bridge's decisions in LAPI and then resets the state
// file, so that the next sync pulls the whole list and pushes it again.
// It takes the state file's lock, so it refuses while a daemon or a sync
// runs: they would keep their own idea of what is active.
func flush(ctx context.Context, cfg *config.Config, lc *lapi.Client, w io.Writer) bool {
	lock, err := state.Acquire(cfg.StateFile)
	if err != nil {
		row(w, "flush", "refused: %v", err)
		return false
	}
	defer lock.Release()
	n, err := lc.DeleteOrigin(ctx)
	if err != nil {
		row(w, "flush", "failed: %v", err)
		return false
	}
	row(w, "LAPI", "expired %d decisions of origin %s", n, cfg.Decisions.Origin)
	if err := state.New().Save(cfg.StateFile); err != nil {
		row(w, "state file", "not reset: %v", err)
		return false
	}
	if err := state.EndPush(cfg.StateFile); err != nil {
		row(w, "state file", "push marker not cleared: %v", err)
		return false
	}
	row(w, "state file", "reset (%s): the next sync pushes the whole list again", cfg.StateFile)
	return true
}
