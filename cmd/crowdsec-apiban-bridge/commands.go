package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bouncer"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bridge"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bridge/lapi"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bridge/metrics"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bridge/state"
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
		ok = status(ctx, cfg, lc, tw)
	case cmdCheck:
		ok = check(ctx, cfg, lc, f.args[0], tw, log)
	case cmdFlush:
		ok = flush(ctx, cfg, lc, tw)
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

// status prints the state file, the running daemon's view (from its
// /healthz) and whether LAPI answers. It fails when LAPI does not answer
// or the state file cannot be read.
func status(ctx context.Context, cfg *config.Config, lc *lapi.Client, w io.Writer) bool {
	now := time.Now()
	ok := true
	row(w, "state file", "%s", cfg.StateFile)
	st, err := state.Load(cfg.StateFile)
	switch {
	case errors.Is(err, state.ErrNotExist):
		row(w, "", "none yet: the next sync reads LAPI back, then pulls the whole list")
	case err != nil:
		row(w, "", "unreadable: %v", err)
		ok = false
	default:
		st.Prune(now)
		row(w, "cursor", "%s", orNone(st.Cursor))
		row(w, "last full sync", "%s", ago(st.LastFullSync, now))
		row(w, "active (state)", "%d decisions in %d alerts", len(st.Active), len(st.Alerts))
		if st.LastRepair.IsZero() {
			row(w, "last repair", "never (LAPI has lost nothing this bridge noticed)")
		} else {
			row(w, "last repair", "%s: %d decisions LAPI had lost pushed again", ago(st.LastRepair, now), st.LastRepaired)
		}
		if next := nextFull(st.LastFullSync, cfg.APIBAN.FullResyncInterval); !next.IsZero() {
			row(w, "next full sync", "due %s", next.UTC().Format(time.RFC3339))
		}
	}
	if pushing, err := state.PushInterrupted(cfg.StateFile); err == nil && pushing {
		row(w, "unconfirmed push", "yes: the next sync reads this bridge's decisions back from LAPI first")
	}
	daemonRows(ctx, cfg, w, now)
	held, err := lc.Active(ctx, now)
	if err != nil {
		row(w, "LAPI", "%s unreachable: %q", cfg.CrowdSec.LAPIURL, err.Error())
		ok = false
	} else {
		row(w, "LAPI", "%s reachable: %d active decisions of origin %s in %d alerts", cfg.CrowdSec.LAPIURL, len(held.Active), cfg.Decisions.Origin, len(held.Alerts))
	}
	bouncerRow(ctx, cfg, w)
	mirrorRow(ctx, cfg, w)
	return ok
}

// bouncerRow reports the embedded bouncer's kernel set sizes as the
// running daemon's /metrics exposes them: only that process knows them.
func bouncerRow(ctx context.Context, cfg *config.Config, w io.Writer) {
	if !cfg.Bouncer.Enabled {
		row(w, "bouncer sets", "n/a (bouncer.enabled is false)")
		return
	}
	if !cfg.Prometheus.Enabled {
		row(w, "bouncer sets", "unknown (prometheus.enabled is false)")
		return
	}
	addr := cfg.Prometheus.Addr()
	m, err := scrapeMetrics(ctx, addr)
	elements, ok := m["crowdsec_apiban_bridge_bouncer_kernel_elements"]
	if err != nil || !ok {
		row(w, "bouncer sets", "unknown (the daemon's /metrics on %s has no bouncer figures)", addr)
		return
	}
	row(w, "bouncer sets", "%.0f elements in the %s sets (%s), %.0f active decisions",
		elements, cfg.Bouncer.Mode, cfg.Bouncer.SetPrefix+"-*", m["crowdsec_apiban_bridge_bouncer_active_decisions"])
	if packets, ok := m["crowdsec_apiban_bridge_bouncer_dropped_packets_total"]; ok {
		row(w, "bouncer drops", "%.0f packets, %.0f bytes since the daemon started (by origin and IP type on %s/metrics)",
			packets, m["crowdsec_apiban_bridge_bouncer_dropped_bytes_total"], addr)
	}
}

// daemonGet asks the running daemon's HTTP endpoint path; ctx bounds it.
func daemonGet(ctx context.Context, addr, path string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return nil, err
	}
	return http.DefaultClient.Do(req)
}

// scrapeMetrics reads a Prometheus text page into name -> value, summing
// the series of one name (labels dropped).
func scrapeMetrics(ctx context.Context, addr string) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	resp, err := daemonGet(ctx, addr, "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 8<<20))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		name := line[:i]
		if j := strings.IndexByte(name, '{'); j >= 0 {
			name = name[:j]
		}
		out[name] += v
	}
	return out, sc.Err()
}

func orNone(s string) string {
	if s == "" {
		return "none (the next sync starts from the beginning)"
	}
	return s
}

func nextFull(last time.Time, every time.Duration) time.Time {
	if every <= 0 || last.IsZero() {
		return time.Time{}
	}
	return last.Add(every)
}

// daemonRows says whether a daemon runs, from the state file's lock (the
// metrics port could be anyone's), and how its syncs go, from its /healthz.
func daemonRows(ctx context.Context, cfg *config.Config, w io.Writer, now time.Time) {
	pid, held, err := state.Holder(cfg.StateFile)
	switch {
	case err != nil:
		row(w, "daemon", "unknown: %v", err)
		return
	case !held:
		row(w, "daemon", "not running (nothing holds %s)", state.LockPath(cfg.StateFile))
		return
	}
	row(w, "daemon", "running: PID %s holds %s", pid, state.LockPath(cfg.StateFile))
	if !cfg.Prometheus.Enabled {
		row(w, "health", "unknown (prometheus.enabled is false, so it has no /healthz)")
		return
	}
	addr := cfg.Prometheus.Addr()
	h, code, err := health(ctx, addr)
	if err != nil {
		row(w, "health", "no answer on %s: still starting, or the port is taken by another process", addr)
		return
	}
	if strconv.Itoa(h.PID) != pid {
		row(w, "health", "unknown: PID %d answers on %s, not the daemon (PID %s): another process took the port", h.PID, addr, pid)
		return
	}
	// Quoted: whatever answers on the port reaches root's terminal
	// only as printable text.
	row(w, "health", "%q (HTTP %d)%s", h.Status, code, reason(h.Reason))
	last, _ := time.Parse(time.RFC3339, h.LastSync)
	success, _ := time.Parse(time.RFC3339, h.LastSuccess)
	row(w, "last sync", "%s", ago(last, now))
	row(w, "last success", "%s", ago(success, now))
	if h.LastError != "" {
		row(w, "last error", "%q: %q", h.LastErrorKind, h.LastError)
	}
	if !last.IsZero() {
		if h.LastError != "" {
			row(w, "next run", "retry before %s (backing off after the failure)", last.Add(cfg.APIBAN.PollInterval).UTC().Format(time.RFC3339))
		} else {
			row(w, "next run", "about %s", last.Add(cfg.APIBAN.PollInterval).UTC().Format(time.RFC3339))
		}
	}
}

func reason(r string) string {
	if r == "" {
		return ""
	}
	return fmt.Sprintf(": %q", r)
}

func health(ctx context.Context, addr string) (metrics.Health, int, error) {
	var h metrics.Health
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	resp, err := daemonGet(ctx, addr, "/healthz")
	if err != nil {
		return h, 0, err
	}
	defer resp.Body.Close()
	err = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&h)
	return h, resp.StatusCode, err
}

// check answers, for one address: does APIBAN list it, would the bridge
// refuse it (allowlists), which active decisions cover it in LAPI and
// whether the bridge's state holds it, and whether the embedded bouncer's
// kernel sets do. It fails when a source cannot be asked, so a script can
// tell "no" from "do not know"; the kernel sets are the exception (see
// kernelRows).
func check(ctx context.Context, cfg *config.Config, lc *lapi.Client, arg string, w io.Writer, log *logrus.Logger) bool {
	addr, err := netip.ParseAddr(arg)
	if err != nil || addr.Zone() != "" {
		row(w, "address", "%q is not an IP address", arg)
		return false
	}
	addr = addr.Unmap()
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
		row(w, "APIBAN", "%s", map[bool]string{true: "listed (set " + cfg.APIBAN.Set + ")", false: "not listed"}[listed])
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
	ours := false
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
			ours = ours || d.Origin == cfg.Decisions.Origin
			// Quoted: origins and scenarios are whatever LAPI's writers
			// sent.
			row(w, key, "%q by origin %q (%q, %s %q, %s left)", d.Type, d.Origin, d.Scenario, d.Scope, d.Value, d.Left.Round(time.Second))
		}
	}

	if st, err := state.Load(cfg.StateFile); err == nil {
		switch {
		case !st.ActiveAt(single, now):
			row(w, "bridge state", "not pushed by this bridge")
		case lookupErr == nil && !ours && !allowed:
			// docs/operations.md: the operator-delete contract.
			row(w, "bridge state", "pushed until %s, but LAPI no longer holds it (lost, or `cscli decisions delete`): "+
				"the next repair pushes it again; to keep it out, add it to `cscli allowlists` or allowlist.cidrs",
				st.Active[single].UTC().Format(time.RFC3339))
		default:
			row(w, "bridge state", "pushed, decision until %s", st.Active[single].UTC().Format(time.RFC3339))
		}
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
	n, err := lc.Flush(ctx)
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
