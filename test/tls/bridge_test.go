package tlstest

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/apibansim"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/bridgetest"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/lapitest"
)

// Secrets of the bridge runs; no output may contain them.
const (
	apibanKey = "Key-tls-3b4c5d6e7f"
	password  = "Pw-tls-8a9b0c1d2e"
)

// syncOnce writes a config whose crowdsec section is auth with lapi_url
// l.URL, runs `--once` against an APIBAN simulator listing ips, and checks
// that no secret reached the output.
func syncOnce(t *testing.T, l *lapitest.LAPI, auth bridgetest.CrowdSec, ips []string) bridgetest.Result {
	t.Helper()
	bin := bridgeBinary(t)
	sim := apibansim.New(apibansim.Options{Key: apibanKey, MaxRequests: apibansim.Unlimited})
	t.Cleanup(sim.Close)
	sim.Add(ips...)
	dir := t.TempDir()
	auth.LAPIURL = l.URL
	cfg := bridgetest.Config{
		APIBAN: bridgetest.APIBAN{APIKey: apibanKey, URL: sim.URL(), MaxRequests: new(0),
			Timeout: 5 * time.Second, MaxRetries: new(1)},
		CrowdSec:   auth,
		StateFile:  filepath.Join(dir, "state.json"),
		LogLevel:   "info",
		Prometheus: bridgetest.Prometheus{Enabled: new(false)},
	}.Write(t, dir)
	r := bridgetest.Run(t, time.Minute, bin, "-c", cfg, "--once")
	if !bridgetest.AssertNoSecrets(t, r.Combined(), append(secretsOf(t, l), apibanKey, password)...) {
		t.FailNow()
	}
	return r
}

// secretsOf returns a line of each private key of l's PKI.
func secretsOf(t *testing.T, l *lapitest.LAPI) []string {
	t.Helper()
	var out []string
	for _, key := range []string{l.TLS.AgentKey, l.TLS.BouncerKey} {
		b, err := os.ReadFile(key)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, strings.Split(string(b), "\n")[1])
	}
	return out
}

// assertPushed wants exactly ips as active apiban decisions in LAPI.
func assertPushed(t *testing.T, l *lapitest.LAPI, ips []string) {
	t.Helper()
	var got []string
	for _, d := range l.Decisions(t, "apiban") {
		got = append(got, d.Value)
	}
	slices.Sort(got)
	want := slices.Sorted(slices.Values(ips))
	if !slices.Equal(got, want) {
		t.Fatalf("LAPI holds %d apiban decisions %v, want %d", len(got), bridgetest.Head(got, 5), len(want))
	}
}

// The machine login over HTTPS: with a password, with a client
// certificate and no password, and with insecure_skip_verify instead of
// the CA. Each run pushes the simulated feed into LAPI.
func TestBridgeMachineLoginOverTLS(t *testing.T) {
	needLAPI(t)
	l, files := lapitest.StartTLS(t)
	l.AddMachine(t, "crowdsec-apiban-bridge", password)
	for i, c := range []struct {
		name string
		auth bridgetest.CrowdSec
	}{
		{"password+CA", bridgetest.CrowdSec{Password: password, CACertPath: files.CA}},
		{"certificate+CA", bridgetest.CrowdSec{CertPath: files.AgentCert, KeyPath: files.AgentKey, CACertPath: files.CA}},
		{"password+insecure", bridgetest.CrowdSec{Password: password, InsecureSkipVerify: true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ips := apibansim.PublicIPv4s(40, uint64(i+1))
			r := syncOnce(t, l, c.auth, ips)
			if r.Code != 0 {
				t.Fatalf("--once exited %d:\n%s", r.Code, r.Combined())
			}
			assertPushed(t, l, ips)
			l.Cscli(t, "decisions", "delete", "--origin", "apiban")
		})
	}
	// The certificate login registered the machine as CN@IP, by TLS.
	want := lapitest.Client{Name: lapitest.AgentCN + "@127.0.0.1", AuthType: "tls"}
	if got := l.Machines(t); !slices.Contains(got, want) {
		t.Fatalf("LAPI's machines %+v lack %+v", got, want)
	}
}

// A CA that did not sign LAPI's certificate: the run fails at once, says
// why, and pushes nothing.
func TestBridgeWrongCA(t *testing.T) {
	needLAPI(t)
	l, files := lapitest.StartTLS(t)
	l.AddMachine(t, "crowdsec-apiban-bridge", password)
	for _, c := range []struct {
		name string
		auth bridgetest.CrowdSec
	}{
		{"password", bridgetest.CrowdSec{Password: password, CACertPath: files.WrongCA}},
		{"certificate", bridgetest.CrowdSec{CertPath: files.AgentCert, KeyPath: files.AgentKey, CACertPath: files.WrongCA}},
	} {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			r := syncOnce(t, l, c.auth, apibansim.PublicIPv4s(20, 9))
			if r.Code == 0 {
				t.Fatalf("--once succeeded with a wrong CA:\n%s", r.Combined())
			}
			const why = "x509: certificate signed by unknown authority"
			if !strings.Contains(r.Combined(), why) {
				t.Fatalf("the error does not say %q:\n%s", why, r.Combined())
			}
			if took := time.Since(start); took > 30*time.Second {
				t.Errorf("failing took %s", took)
			}
			if ds := l.Decisions(t, "apiban"); len(ds) != 0 {
				t.Fatalf("%d decisions pushed through an untrusted LAPI", len(ds))
			}
		})
	}
}
