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
	d := daemonRows(ctx, cfg, w, now)
	for _, f := range feeds {
		ok = lapiRow(ctx, cfg, f, len(feeds) > 1, w, now) && ok
	}
	bouncerRows(cfg, d, w)
	mirrorRows(cfg, d, w)
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

// daemonView is what status learnt from the running daemon's /metrics,
// scraped once: nil metrics, and why, when it learnt nothing.
type daemonView struct {
	metrics map[string]float64
	why     string
}

// figures returns the daemon's metrics when any name starts with prefix.
func (d daemonView) figures(prefix string) (map[string]float64, bool) {
	for name := range d.metrics {
		if strings.HasPrefix(name, prefix) {
			return d.metrics, true
		}
	}
	return nil, false
}

// bouncerRows reports the embedded bouncer's kernel set sizes, drops and
// resyncs as the running daemon's /metrics exposes them: only that
// process knows them.
func bouncerRows(cfg *config.Config, d daemonView, w io.Writer) {
	if !cfg.Bouncer.Enabled {
		row(w, "bouncer sets", "n/a (bouncer.enabled is false)")
		return
	}
	m, ok := d.figures("crowdsec_apiban_bridge_bouncer_")
	if !ok {
		row(w, "bouncer sets", "unknown (%s)", orWhy(d.why, "the daemon's /metrics has no bouncer figures"))
		return
	}
	row(w, "bouncer sets", "%.0f elements in the %s sets (%s), %.0f active decisions",
		m["crowdsec_apiban_bridge_bouncer_kernel_elements"], cfg.Bouncer.Mode, cfg.Bouncer.SetPrefix+"-*", m["crowdsec_apiban_bridge_bouncer_active_decisions"])
	if packets, ok := m["crowdsec_apiban_bridge_bouncer_dropped_packets_total"]; ok {
		row(w, "bouncer drops", "%.0f packets, %.0f bytes since the daemon started (by origin and IP type on %s/metrics)",
			packets, m["crowdsec_apiban_bridge_bouncer_dropped_bytes_total"], cfg.Prometheus.Addr())
	}
	resyncRow(w, "bouncer resyncs", "bouncer.resync_interval", cfg.Bouncer.ResyncInterval, m, "crowdsec_apiban_bridge_bouncer_")
}

// resyncRow reports a stream reader's periodic full pulls of LAPI's list
// (docs/bouncer.md, "Resync"): how many, and what they changed in all.
// Only the totals are exported, so no single resync's share is shown.
func resyncRow(w io.Writer, key, setting string, every time.Duration, m map[string]float64, prefix string) {
	n, ok := m[prefix+"resyncs_total"]
	switch {
	case every == 0:
		row(w, key, "off (%s is 0)", setting)
	case !ok:
		row(w, key, "unknown (the daemon's /metrics does not count them)")
	case n == 0:
		row(w, key, "none since the daemon started (every %s)", formatEvery(every))
	default:
		row(w, key, "%.0f since the daemon started (every %s): %.0f added and %.0f removed in all (what the stream had missed)",
			n, formatEvery(every), m[prefix+"resync_added_total"], m[prefix+"resync_removed_total"])
	}
}

func formatEvery(d time.Duration) string {
	return strings.TrimSuffix(strings.TrimSuffix(d.String(), "0s"), "0m")
}

func orWhy(why, otherwise string) string {
	if why != "" {
		return why
	}
	return otherwise
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
// metrics port could be anyone's), checks that the socket listening on
// its metrics port is that process's, and reports how its syncs go, from
// its /healthz. It scrapes the daemon's /metrics once, for the rows after
// it.
func daemonRows(ctx context.Context, cfg *config.Config, w io.Writer, now time.Time) daemonView {
	lock := state.LockPath(cfg.Feeds()[0].StateFile)
	pid, held, err := state.Holder(cfg.Feeds()[0].StateFile)
	switch {
	case err != nil:
		row(w, "daemon", "unknown: %v", err)
		return daemonView{why: "whether a daemon runs is unknown"}
	case !held:
		row(w, "daemon", "not running (nothing holds %s)", lock)
		return daemonView{why: "no daemon runs"}
	}
	row(w, "daemon", "running: PID %s holds %s", pid, lock)
	if !cfg.Prometheus.Enabled {
		row(w, "health", "unknown (prometheus.enabled is false, so it has no /healthz)")
		return daemonView{why: "prometheus.enabled is false"}
	}
	addr := cfg.Prometheus.Addr()
	pidN, err := strconv.Atoi(pid)
	l := listener{state: listenerUnknown, why: "the lock file names no PID"}
	if err == nil {
		l = checkListener(addr, pidN)
	}
	switch l.state {
	case listenerOther:
		row(w, "health", "unknown: another process (%s) listens on %s, not the daemon (PID %s)", l.other, addr, pid)
		return daemonView{why: "another process listens on " + addr}
	case listenerNone:
		row(w, "health", "no answer: nothing listens on %s (still starting, or its listener failed: see its log)", addr)
		return daemonView{why: "nothing listens on " + addr}
	case listenerUnknown:
		// Said plainly: what follows may come from any process.
		row(w, "metrics port", "not verified to be the daemon's: %s; the rows below are whatever answers on %s", l.why, addr)
	case listenerDaemon:
		row(w, "metrics port", "%s is the daemon's (PID %s holds its listening socket)", addr, pid)
	}
	if !healthRows(ctx, cfg, w, addr, pid, now) {
		return daemonView{why: "the process on " + addr + " is not the daemon"}
	}
	m, err := scrapeMetrics(ctx, addr)
	if err != nil {
		return daemonView{why: "the daemon's /metrics on " + addr + " did not answer"}
	}
	return daemonView{metrics: m}
}

// healthRows prints the daemon's /healthz; false when the answer names
// another PID than the lock holder's.
func healthRows(ctx context.Context, cfg *config.Config, w io.Writer, addr, pid string, now time.Time) bool {
	h, code, err := health(ctx, addr)
	if err != nil {
		row(w, "health", "no answer on %s: still starting, or the port is taken by another process", addr)
		return true
	}
	if strconv.Itoa(h.PID) != pid {
		row(w, "health", "unknown: PID %d answers on %s, not the daemon (PID %s): another process took the port", h.PID, addr, pid)
		return false
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
	return true
}

// errNoListener: no socket listens on the address.
var errNoListener = errors.New("nothing listens there")

// bouncerOnlyView scrapes the bouncer-only daemon's /metrics once. That
// mode holds no lock naming its daemon, so what answers cannot be checked
// against a PID: status names the process that listens, and says so.
func bouncerOnlyView(ctx context.Context, cfg *config.Config, w io.Writer) daemonView {
	if !cfg.Prometheus.Enabled {
		return daemonView{why: "prometheus.enabled is false"}
	}
	addr := cfg.Prometheus.Addr()
	who, err := whoListens(addr)
	switch {
	case errors.Is(err, errNoListener):
		row(w, "metrics port", "nothing listens on %s: the bouncer is not running, or its listener failed (see its log)", addr)
		return daemonView{why: "nothing listens on " + addr}
	case err != nil:
		row(w, "metrics port", "not verified to be the bouncer's (%v): the rows below are whatever answers on %s", err, addr)
	default:
		row(w, "metrics port", "%s listens on %s: not verified to be the bouncer (bouncer-only mode holds no lock that names it)", who, addr)
	}
	m, err := scrapeMetrics(ctx, addr)
	if err != nil {
		return daemonView{why: "the daemon's /metrics on " + addr + " did not answer"}
	}
	return daemonView{metrics: m}
}

// listener is who holds the socket listening on the metrics port.
type listener struct {
	state int
	other string // listenerOther: "PID 123, \"name\"", or why unknown
	why   string // listenerUnknown: why it could not be told
}

const (
	listenerUnknown = iota
	listenerDaemon
	listenerOther
	listenerNone
)

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
