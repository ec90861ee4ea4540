package faults

import (
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bridge/state"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/apibansim"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/bridgetest"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/lapitest"
)

// bridgeBin is the binary under test, built once (with -race) by TestMain.
var bridgeBin string

func TestMain(m *testing.M) { bridgetest.Main(m, &bridgeBin) }

// Secrets of every run; no log line of the bridge may contain them.
const (
	apiKey   = "Key-faults-5e6f7a8b9c"
	password = "Pw-faults-0d1e2f3a4b"
	origin   = "apiban"
	// allowlisted is in the configured allowlist: never a decision.
	allowlisted = "198.51.100.0/24"
)

// rig is one installation: a real LAPI, maybe a proxy in front of it, the
// simulator, a config file and a state file.
type rig struct {
	t      *testing.T
	lapi   *lapitest.LAPI
	proxy  *lapiProxy
	sim    *apibansim.Sim
	dir    string
	cfg    bridgetest.Config
	config string
	state  string
	want   map[string]bool // what LAPI must end with
}

type rigOpts struct {
	proxy         bool
	pollSecs      int // poll_interval in seconds (at least 10)
	batch         int // decisions.batch_size (250 when 0)
	maxNewPerSync int // decisions.max_new_per_sync (none when 0)
}

func newRig(t *testing.T, o rigOpts) *rig {
	t.Helper()
	r := &rig{t: t, lapi: lapitest.Start(t), dir: t.TempDir(), want: map[string]bool{}}
	r.sim = apibansim.New(apibansim.Options{Key: apiKey, MaxRequests: apibansim.Unlimited, MaxHang: 10 * time.Second})
	t.Cleanup(r.sim.Close)
	r.lapi.AddMachine(t, "crowdsec-apiban-bridge", password)
	lapiURL := r.lapi.URL
	if o.proxy {
		r.proxy = newProxy(t, r.lapi.URL)
		lapiURL = r.proxy.URL()
	}
	if o.pollSecs == 0 {
		o.pollSecs = 10
	}
	if o.batch == 0 {
		o.batch = 250
	}
	r.state = filepath.Join(r.dir, "state", "state.json")
	// Small timeouts and windows keep the suite short; the logic they
	// drive is the production one.
	r.cfg = bridgetest.Config{
		APIBAN: bridgetest.APIBAN{APIKey: apiKey, URL: r.sim.URL(), PollInterval: time.Duration(o.pollSecs) * time.Second,
			MaxRequests: new(0), RateWindow: time.Second, Timeout: 2 * time.Second, MaxRetries: new(2)},
		CrowdSec:  bridgetest.CrowdSec{LAPIURL: lapiURL, Login: "crowdsec-apiban-bridge", Password: password},
		Decisions: bridgetest.Decisions{BatchSize: o.batch, MaxNewPerSync: o.maxNewPerSync},
		Allowlist: bridgetest.Allowlist{CIDRs: []string{allowlisted}},
		StateFile: r.state,
		LogLevel:  "info",
		// Tests run side by side: no fixed port.
		Prometheus: bridgetest.Prometheus{Enabled: new(false)},
	}
	r.config = r.cfg.Write(t, r.dir)
	return r
}

// feed adds n public addresses (and one allowlisted one, which must stay
// out of LAPI) to the simulator.
func (r *rig) feed(n int, seed uint64) {
	ips := apibansim.PublicIPv4s(n, seed)
	r.sim.Add(ips...)
	r.sim.Add(fmt.Sprintf("198.51.100.%d", seed%250+1))
	for _, ip := range ips {
		r.want[ip] = true
	}
}

// daemon is a running bridge process whose log goes to a buffer.
// start runs the daemon on this rig's config; its output is checked for
// secrets at test end.
func (r *rig) start(args ...string) *bridgetest.Daemon {
	r.t.Helper()
	return bridgetest.StartDaemon(r.t, bridgeBin, nil, []string{apiKey, password}, append([]string{"-c", r.config}, args...)...)
}

// stop wants a clean SIGTERM exit with the stop logged.
func stop(t *testing.T, d *bridgetest.Daemon) string {
	t.Helper()
	out := d.Stop()
	if !strings.Contains(out, "stopped") {
		t.Errorf("no clean stop logged:\n%s", out)
	}
	return out
}

// decisions returns this bridge's active decisions by value; it fails on
// a value holding two.
func (r *rig) decisions() (map[string]bool, error) {
	out, err := r.lapi.CscliErr("decisions", "list", "--origin", origin, "--limit", "0", "-o", "json")
	if err != nil {
		return nil, err
	}
	return parseDecisions(out)
}

// converged reports whether LAPI holds exactly r.want, and fails the test
// on a duplicate at any time.
func (r *rig) converged() bool {
	r.t.Helper()
	got, err := r.decisions()
	if errors.Is(err, errDuplicate) {
		r.t.Fatal(err)
	}
	if err != nil {
		return false // LAPI may be down on purpose
	}
	if len(got) != len(r.want) {
		return false
	}
	for v := range r.want {
		if !got[v] {
			return false
		}
	}
	return true
}

// waitConverged waits for convergence, with the daemon alive throughout.
func (r *rig) waitConverged(d *bridgetest.Daemon, limit time.Duration) {
	r.t.Helper()
	if bridgetest.Poll(limit, func() bool {
		if d != nil {
			d.Running()
		}
		return r.converged()
	}) {
		return
	}
	got, _ := r.decisions()
	var missing, extra []string
	for v := range r.want {
		if !got[v] {
			missing = append(missing, v)
		}
	}
	for v := range got {
		if !r.want[v] {
			extra = append(extra, v)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	log := ""
	if d != nil {
		log = d.Log.String()
	}
	r.t.Fatalf("not converged within %s: %d missing %v, %d unexpected %v\n%s",
		limit, len(missing), bridgetest.Head(missing, 10), len(extra), bridgetest.Head(extra, 10), log)
}

func (r *rig) savedState() *state.State {
	r.t.Helper()
	st, err := state.Load(r.state)
	if err != nil {
		r.t.Fatalf("state file: %v", err)
	}
	return st
}

// once runs `--once` and returns its exit code and log.
func (r *rig) once(args ...string) (int, string) {
	r.t.Helper()
	res := bridgetest.Run(r.t, 2*time.Minute, bridgeBin, append([]string{"-c", r.config, "--once"}, args...)...)
	out := res.Combined()
	bridgetest.AssertNoSecrets(r.t, out, apiKey, password)
	return res.Code, out
}

// setConfig changes the config and writes the file again.
func (r *rig) setConfig(change func(c *bridgetest.Config)) {
	r.t.Helper()
	change(&r.cfg)
	r.cfg.Write(r.t, r.dir)
}
