package sip

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/apibansim"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/bridgetest"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/lapitest"
)

// Secrets of every run: no output of the bridge may hold them.
const (
	apiKey       = "Key-sip-0f9a8b7c6d"
	password     = "Pw-sip-1a2b3c4d5e"
	mirrorKey    = "Mirror-sip-5e6f7a8b9c0d1e2f"
	mirrorLAPI   = "MirrorLAPI-sip-4d3c2b1a"
	mirrorClient = "kamailio1"
)

var secrets = []string{apiKey, password, mirrorKey, mirrorLAPI}

// env is a LAPI, the APIBAN simulator and a bridge config with the
// mirror on at listen (IP:port) and the embedded bouncer off.
type env struct {
	t      *testing.T
	lapi   *lapitest.LAPI
	sim    *apibansim.Sim
	dir    string
	config string
	listen string
}

// newEnv sets the environment up; each with changes the bridge's config.
func newEnv(t *testing.T, listen string, with ...func(*bridgetest.Config)) *env {
	t.Helper()
	e := &env{t: t, lapi: lapitest.Start(t), dir: t.TempDir(), listen: listen}
	// A fixed metrics port, so that `status` finds the daemon's figures.
	_, port, _ := net.SplitHostPort(freePort(t, "127.0.0.1"))
	promPort, _ := strconv.Atoi(port)
	e.sim = apibansim.New(apibansim.Options{Key: apiKey, MaxRequests: apibansim.Unlimited})
	t.Cleanup(e.sim.Close)
	e.lapi.AddMachine(t, "crowdsec-apiban-bridge", password)
	e.lapi.Cscli(t, "bouncers", "add", "crowdsec-apiban-bridge-mirror", "-k", mirrorLAPI)
	cfg := bridgetest.Config{
		APIBAN: bridgetest.APIBAN{APIKey: apiKey, URL: e.sim.URL(), APIVersion: "v2",
			MaxRequests: new(0), Timeout: 5 * time.Second, MaxRetries: new(2), PollInterval: time.Hour},
		CrowdSec:   bridgetest.CrowdSec{LAPIURL: e.lapi.URL, Login: "crowdsec-apiban-bridge", Password: password},
		StateFile:  filepath.Join(e.dir, "state", "state.json"),
		LogLevel:   "debug",
		Prometheus: bridgetest.Prometheus{ListenPort: new(promPort)},
		Bouncer:    bridgetest.Bouncer{Enabled: new(false)},
		Extra: fmt.Sprintf("mirror:\n  enabled: true\n  listen_addr: %s\n  keys: [{name: %s, key: %s}]\n  lapi_key: %s\n  update_frequency: 1s\n  max_requests: 0\n",
			listen, mirrorClient, mirrorKey, mirrorLAPI),
	}
	for _, w := range with {
		w(&cfg)
	}
	e.config = cfg.Write(t, e.dir)
	return e
}

// start runs the daemon and waits until the mirror answers with LAPI's
// first stream answer loaded.
func (e *env) start() *bridgetest.Daemon {
	e.t.Helper()
	d := bridgetest.StartDaemon(e.t, bridgeBin, nil, secrets, "-c", e.config)
	e.waitFor("the mirror to be ready", func() bool {
		code, _ := e.get("/api/" + mirrorKey + "/check/203.0.113.254")
		return code == 400 || code == 200
	})
	d.Running()
	return d
}

// status runs `status` against the running daemon and returns its output.
func (e *env) status() string {
	e.t.Helper()
	r := bridgetest.Run(e.t, time.Minute, bridgeBin, "-c", e.config, "status")
	bridgetest.AssertNoSecrets(e.t, r.Combined(), secrets...)
	return r.Stdout
}

// get asks the mirror for path.
func (e *env) get(path string) (int, string) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + e.listen + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	return resp.StatusCode, string(b)
}

// waitFor polls cond for up to a minute: the rtimer, the stream and the
// bridge's sync each take their turn, so readiness is awaited, not timed.
func (e *env) waitFor(what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// lapiSet is every active Ip decision value in LAPI for the origins.
func (e *env) lapiSet(origins ...string) map[string]bool {
	e.t.Helper()
	out := map[string]bool{}
	for _, o := range origins {
		for _, d := range e.lapi.Decisions(e.t, o) {
			out[d.Value] = true
		}
	}
	return out
}

// freePort returns a free TCP port on ip.
func freePort(t *testing.T, ip string) string {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func lines(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == '\n' })
}

func writeFile(t *testing.T, path, text string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
