package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bridge/lapi"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bridge/metrics"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bridge/state"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/config"
)

// status prints each set's state file and LAPI's count of its decisions,
// the running daemon's view (from its /healthz) and whether LAPI answers.
// It fails when LAPI does not answer or a state file cannot be read.
func status(ctx context.Context, cfg *config.Config, w io.Writer) bool {
	now := time.Now()
	ok := true
	feeds := cfg.Feeds()
	for _, f := range feeds {
		if len(feeds) > 1 {
			row(w, "set", "%s (scenario %s)", f.Set, f.Scenario)
		}
		ok = stateRows(w, cfg, f.StateFile, now) && ok
	}
	daemonRows(ctx, cfg, w, now)
	for _, f := range feeds {
		ok = lapiRow(ctx, cfg, f, len(feeds) > 1, w, now) && ok
	}
	bouncerRow(ctx, cfg, w)
	mirrorRow(ctx, cfg, w)
	return ok
}

// stateRows prints one set's state file; false when it is unreadable.
func stateRows(w io.Writer, cfg *config.Config, path string, now time.Time) bool {
	ok := true
	row(w, "state file", "%s", path)
	st, err := state.Load(path)
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
		row(w, "active (state)", "%d decisions in %d alerts", st.Active.Len(), len(st.Alerts))
		if st.LastRepair.IsZero() {
			row(w, "last repair", "never (LAPI has lost nothing this bridge noticed)")
		} else {
			row(w, "last repair", "%s: %d decisions LAPI had lost pushed again", ago(st.LastRepair, now), st.LastRepaired)
		}
		if next := nextFull(st.LastFullSync, cfg.APIBAN.FullResyncInterval); !next.IsZero() {
			row(w, "next full sync", "due %s", next.UTC().Format(time.RFC3339))
		}
	}
	if pushing, err := state.PushInterrupted(path); err == nil && pushing {
		row(w, "unconfirmed push", "yes: the next sync reads this bridge's decisions back from LAPI first")
	}
	return ok
}

// lapiRow counts one set's active decisions in LAPI (its origin and
// scenario, named when there are several sets); false when LAPI does not
// answer.
func lapiRow(ctx context.Context, cfg *config.Config, f config.Feed, several bool, w io.Writer, now time.Time) bool {
	lc, err := newSetLAPI(cfg, f)
	if err == nil {
		var held lapi.Holdings
		if held, err = lc.Active(ctx, now); err == nil {
			of := "origin " + cfg.Decisions.Origin
			if several {
				of += ", scenario " + f.Scenario
			}
			row(w, "LAPI", "%s reachable: %d active decisions of %s in %d alerts", cfg.CrowdSec.LAPIURL, len(held.Active), of, len(held.Alerts))
			return true
		}
	}
	row(w, "LAPI", "%s unreachable: %q", cfg.CrowdSec.LAPIURL, err.Error())
	return false
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
	pid, held, err := state.Holder(cfg.Feeds()[0].StateFile)
	switch {
	case err != nil:
		row(w, "daemon", "unknown: %v", err)
		return
	case !held:
		row(w, "daemon", "not running (nothing holds %s)", state.LockPath(cfg.Feeds()[0].StateFile))
		return
	}
	row(w, "daemon", "running: PID %s holds %s", pid, state.LockPath(cfg.Feeds()[0].StateFile))
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
