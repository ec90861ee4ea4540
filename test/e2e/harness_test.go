package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
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
	config string
	state  string
}

type envOpt func(e *env, extra map[string]string)

func newEnv(t *testing.T, opts ...envOpt) *env {
	t.Helper()
	e := &env{t: t, lapi: lapitest.Start(t), dir: t.TempDir()}
	e.sim = apibansim.New(apibansim.Options{Key: apiKey, MaxRequests: apibansim.Unlimited})
	t.Cleanup(e.sim.Close)
	e.lapi.AddMachine(t, "crowdsec-apiban-bridge", password)
	e.state = filepath.Join(e.dir, "state", "state.json")
	e.config = filepath.Join(e.dir, "bridge.yaml")
	// Port 0: daemons of parallel tests never fight over the metrics port.
	extra := map[string]string{"api_version": "v2", "crowdsec_auth": "  password: " + password, "prometheus_port": "0"}
	for _, o := range opts {
		o(e, extra)
	}
	cfg := fmt.Sprintf(`apiban:
  api_key: %s
  url: %s
  api_version: %s
  max_requests: 0
  timeout: 5s
  max_retries: 2
crowdsec:
  lapi_url: %s
  login: crowdsec-apiban-bridge
%s
allowlist:
  cidrs: [198.51.100.0/24]
state_file: %s
log_level: info
prometheus:
  listen_port: %s
%s`, apiKey, e.sim.URL(), extra["api_version"], e.lapi.URL, extra["crowdsec_auth"], e.state, extra["prometheus_port"], extra["more"])
	if err := os.WriteFile(e.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return e
}

// withV1AndCredentialsFile uses API v1 and a `cscli machines add -f` file.
func withV1AndCredentialsFile(e *env, extra map[string]string) {
	creds := e.lapi.AddMachine(e.t, "crowdsec-apiban-bridge", password)
	extra["api_version"] = "v1"
	extra["crowdsec_auth"] = "  credentials_file: " + creds
}

type result struct {
	code           int
	stdout, stderr string
}

// run starts the bridge with args and waits up to a minute for it.
func (e *env) run(args ...string) result {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bridgeBin, append([]string{"-c", e.config}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	if err != nil {
		exitErr, ok := err.(*exec.ExitError)
		if !ok {
			e.t.Fatalf("running the bridge: %v", err)
		}
		r.code = exitErr.ExitCode()
	}
	assertNoSecrets(e.t, r.stdout+r.stderr)
	return r
}

func (e *env) mustSync(args ...string) result {
	e.t.Helper()
	r := e.run(append([]string{"--once"}, args...)...)
	if r.code != 0 {
		e.t.Fatalf("bridge --once exited %d\n%s", r.code, r.stderr)
	}
	return r
}

func assertNoSecrets(t *testing.T, out string) {
	t.Helper()
	for _, s := range []string{apiKey, password} {
		if strings.Contains(out, s) {
			t.Fatalf("a secret reached the output:\n%s", out)
		}
	}
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
		e.t.Fatalf("LAPI decisions differ: %d missing %v, %d unexpected %v", len(missing), head(missing), len(extra), head(extra))
	}
}

func head(s []string) []string {
	if len(s) > 10 {
		return s[:10]
	}
	return s
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

// setAPIBAN adds keys (YAML lines indented by two spaces) to the apiban
// section of the config file.
func (e *env) setAPIBAN(lines string) {
	e.t.Helper()
	cfg, err := os.ReadFile(e.config)
	if err != nil {
		e.t.Fatal(err)
	}
	const anchor = "  max_requests: 0\n"
	if !strings.Contains(string(cfg), anchor) {
		e.t.Fatalf("config has no %q line", anchor)
	}
	out := strings.Replace(string(cfg), anchor, anchor+lines, 1)
	if err := os.WriteFile(e.config, []byte(out), 0o600); err != nil {
		e.t.Fatal(err)
	}
}
