package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/config"
)

// Subcommands. `sync` is the one-shot sync (-once), so it runs through the
// ordinary path; the others are handled here.
const (
	cmdStatus = "status"
	cmdCheck  = "check"
	cmdFlush  = "flush"
	cmdSync   = "sync"
	// cmdRemoveFirewall removes the embedded bouncer's kernel objects,
	// those it created only; for uninstall.sh, not listed in the help.
	cmdRemoveFirewall = "remove-firewall"
)

// commandTimeout bounds what an operator waits for.
const commandTimeout = time.Minute

// checkCommand validates the subcommand and its arguments.
func checkCommand(f *flags) error {
	switch f.command {
	case "":
		return nil
	case cmdSync:
		f.once = true
		return noArgs(f)
	case cmdStatus, cmdFlush, cmdRemoveFirewall:
		return noArgs(f)
	case cmdCheck:
		if len(f.args) != 1 {
			return errors.New("usage: check IP")
		}
		return nil
	}
	return fmt.Errorf("unexpected argument %q (commands: status, check IP, flush, sync)", f.command)
}

func noArgs(f *flags) error {
	if len(f.args) > 0 {
		return fmt.Errorf("%s: unexpected argument %q", f.command, f.args[0])
	}
	return nil
}

// runCommand runs status, check or flush and returns the exit code.
func runCommand(ctx context.Context, f flags, cfg *config.Config, stdout io.Writer, log *logrus.Logger) int {
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	if f.command == cmdRemoveFirewall {
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		defer tw.Flush()
		return exitCode(removeFirewall(ctx, cfg, tw, newBackend))
	}
	lc, err := newLAPI(cfg)
	if err != nil {
		log.WithError(err).Error(f.command)
		return 1
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	defer tw.Flush()
	var ok bool
	switch f.command {
	case cmdStatus:
		ok = status(ctx, cfg, tw)
	case cmdCheck:
		ok = check(ctx, cfg, lc, f.args[0], tw, log)
	case cmdFlush:
		ok = flush(ctx, cfg, tw)
	}
	return exitCode(ok)
}

func exitCode(ok bool) int {
	if !ok {
		return 1
	}
	return 0
}

func row(w io.Writer, key, format string, args ...any) {
	fmt.Fprintf(w, "%s\t%s\n", key, fmt.Sprintf(format, args...))
}

// ago renders a past time for a person.
func ago(t, now time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return fmt.Sprintf("%s (%s ago)", t.UTC().Format(time.RFC3339), now.Sub(t).Round(time.Second))
}
