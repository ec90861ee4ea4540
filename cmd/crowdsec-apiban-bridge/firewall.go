package main

import (
	"context"
	"io"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bouncer"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bridge/state"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/config"
)

// removeFirewall removes the embedded bouncer's kernel objects in both
// modes (the mode may have changed since they were made), whether or not
// the bouncer is enabled now. Each backend removes only what carries its
// marker and names what it refuses to touch (docs/bouncer.md, "Objects
// it owns"). It refuses while the daemon runs: its bouncer would make
// them again, or lose them mid-update.
func removeFirewall(ctx context.Context, cfg *config.Config, w io.Writer, open func(config.Bouncer) (bouncer.Backend, error)) bool {
	// The state file's lock says whether a daemon runs; only asked, not
	// taken: uninstall.sh runs this as root, and the lock file is the
	// service user's.
	if pid, held, err := state.Holder(cfg.Feeds()[0].StateFile); err != nil || held {
		row(w, "remove-firewall", "refused: the daemon is running (PID %s holds %s) or cannot be ruled out (%v); stop it first",
			pid, state.LockPath(cfg.Feeds()[0].StateFile), err)
		return false
	}
	ok := true
	for _, mode := range []string{"nftables", "ipset"} {
		bc := cfg.Bouncer
		bc.Mode = mode
		b, err := open(bc)
		if err != nil {
			row(w, mode, "not available: %v", err)
			continue
		}
		err = b.Cleanup(ctx)
		b.Close()
		if err != nil {
			row(w, mode, "failed: %v", err)
			ok = false
			continue
		}
		row(w, mode, "removed what this bridge created, if anything")
	}
	return ok
}
