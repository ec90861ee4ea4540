package e2e

import (
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bridge/state"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/apibansim"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/bridgetest"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/lapitest"
)

// bridgeBin is the binary under test, built once by TestMain.
var bridgeBin string

func TestMain(m *testing.M) { bridgetest.Main(m, &bridgeBin) }

// Secrets used by every run; no output of the bridge may contain them.
const (
	apiKey   = "Key-e2e-0f9a8b7c6d"
	password = "Pw-e2e-1a2b3c4d5e"
)

// env is one bridge installation: a real LAPI, the APIBAN simulator, a
// config file and a state file.
type env struct {
	t      *testing.T
	lapi   *lapitest.LAPI
	sim    *apibansim.Sim
	dir    string
	cfg    bridgetest.Config
	config string
	state  string
}

type envOpt func(e *env, c *bridgetest.Config)

func newEnv(t *testing.T, opts ...envOpt) *env {
	t.Helper()
	e := &env{t: t, lapi: lapitest.Start(t), dir: t.TempDir()}
	e.sim = apibansim.New(apibansim.Options{Key: apiKey, MaxRequests: apibansim.Unlimited})
	t.Cleanup(e.sim.Close)
	e.lapi.AddMachine(t, "crowdsec-apiban-bridge", password)
	e.state = filepath.Join(e.dir, "state", "state.json")
	e.cfg = bridgetest.Config{
		APIBAN: bridgetest.APIBAN{APIKey: apiKey, URL: e.sim.URL(), APIVersion: "v2",
			MaxRequests: new(0), Timeout: 5 * time.Second, MaxRetries: new(2)},
		CrowdSec:  bridgetest.CrowdSec{LAPIURL: e.lapi.URL, Login: "crowdsec-apiban-bridge", Password: password},
		Allowlist: bridgetest.Allowlist{CIDRs: []string{"198.51.100.0/24"}},
		StateFile: e.state,
		LogLevel:  "info",
		// Port 0: daemons of parallel tests never fight over the metrics port.
		Prometheus: bridgetest.Prometheus{ListenPort: new(0)},
	}
	for _, o := range opts {
		o(e, &e.cfg)
	}
	e.config = e.cfg.Write(t, e.dir)
	return e
}

// withV1AndCredentialsFile uses API v1 and a `cscli machines add -f` file.
func withV1AndCredentialsFile(e *env, c *bridgetest.Config) {
	creds := e.lapi.AddMachine(e.t, "crowdsec-apiban-bridge", password)
	c.APIBAN.APIVersion = "v1"
	c.CrowdSec.Password, c.CrowdSec.CredentialsFile = "", creds
}

// run starts the bridge with args and waits up to a minute for it.
func (e *env) run(args ...string) bridgetest.Result {
	e.t.Helper()
	r := bridgetest.Run(e.t, time.Minute, bridgeBin, append([]string{"-c", e.config}, args...)...)
	bridgetest.AssertNoSecrets(e.t, r.Stdout+r.Stderr, apiKey, password)
	return r
}

func (e *env) mustSync(args ...string) bridgetest.Result {
	e.t.Helper()
	r := e.run(append([]string{"--once"}, args...)...)
	if r.Code != 0 {
		e.t.Fatalf("bridge --once exited %d\n%s", r.Code, r.Stderr)
	}
	return r
}

// decisions returns the active apiban decisions by value and fails on
// any value holding more than one.
func (e *env) decisions() map[string]lapitest.Decision {
	e.t.Helper()
	out := map[string]lapitest.Decision{}
	for _, d := range e.lapi.Decisions(e.t, "apiban") {
		if _, dup := out[d.Value]; dup {
			e.t.Fatalf("%s has two active apiban decisions", d.Value)
		}
		out[d.Value] = d
	}
	return out
}

// assertExactly checks the set of decision values in LAPI.
func (e *env) assertExactly(want []string) {
	e.t.Helper()
	got := e.decisions()
	var missing, extra []string
	wantSet := map[string]bool{}
	for _, v := range want {
		wantSet[v] = true
		if _, ok := got[v]; !ok {
			missing = append(missing, v)
		}
	}
	for v := range got {
		if !wantSet[v] {
			extra = append(extra, v)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing)+len(extra) > 0 {
		e.t.Fatalf("LAPI decisions differ: %d missing %v, %d unexpected %v", len(missing), bridgetest.Head(missing, 10), len(extra), bridgetest.Head(extra, 10))
	}
}

func (e *env) savedState() *state.State {
	e.t.Helper()
	st, err := state.Load(e.state)
	if err != nil {
		e.t.Fatal(err)
	}
	return st
}

// daemon starts the bridge in the background on this env's config; its
// output is checked for secrets at test end.
func (e *env) daemon(environ ...string) *bridgetest.Daemon {
	e.t.Helper()
	return bridgetest.StartDaemon(e.t, bridgeBin, environ, []string{apiKey, password}, "-c", e.config)
}

// setConfig changes the config and writes the file again.
func (e *env) setConfig(change func(c *bridgetest.Config)) {
	e.t.Helper()
	change(&e.cfg)
	e.cfg.Write(e.t, e.dir)
}
