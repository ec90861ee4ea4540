package tlstest

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bouncer"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bridge/lapi"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/bridgetest"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/lapitest"
)

// hour is one decision of an hour for p.
func hour(p netip.Prefix) []lapi.Decision {
	return []lapi.Decision{{Prefix: p, Duration: time.Hour}}
}

// machine builds the bridge's LAPI client as cmd's newLAPI does.
func machine(t *testing.T, l *lapitest.LAPI, o lapi.Options) *lapi.Client {
	t.Helper()
	o.URL, o.Login, o.UserAgent = l.URL, "crowdsec-apiban-bridge", "crowdsec-apiban-bridge/test"
	o.Origin, o.Scenario, o.Type, o.Timeout, o.BatchSize, o.Message = "apiban", "apiban/sip-blocklist", "ban", 30*time.Second, 100, "APIBAN sip"
	c, err := lapi.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// pkg/apiclient keeps TLS settings in package globals that every client
// built afterwards inherits. The bridge's machine client must not leave
// its certificate there: a second machine client without one, given a
// wrong password, must be refused rather than logged in by the first
// one's certificate.
func TestMachineClientsDoNotShareTLS(t *testing.T) {
	needLAPI(t)
	l, files := lapitest.StartTLS(t)
	l.AddMachine(t, "crowdsec-apiban-bridge", password)
	ctx := context.Background()
	ip := hour(netip.MustParsePrefix("192.0.2.51/32"))

	byCert := machine(t, l, lapi.Options{CertPath: files.AgentCert, KeyPath: files.AgentKey, CACertPath: files.CA})
	if _, err := byCert.Push(ctx, ip, time.Now()); err != nil {
		t.Fatalf("certificate login: %v", err)
	}
	wrong := machine(t, l, lapi.Options{Password: "Wrong-pw-4711", CACertPath: files.CA})
	_, err := wrong.Push(ctx, hour(netip.MustParsePrefix("192.0.2.52/32")), time.Now())
	if err == nil {
		t.Fatal("a machine client with a wrong password pushed: it logged in with another client's certificate")
	}
	if strings.Contains(err.Error(), "Wrong-pw-4711") {
		t.Fatalf("the error leaks the password: %v", err)
	}
	if ds := l.Decisions(t, "apiban"); len(ds) != 1 || ds[0].Value != "192.0.2.51" {
		t.Fatalf("LAPI holds %+v, want only 192.0.2.51", ds)
	}
}

// The daemon with bouncer.enabled builds the machine client first
// (newLAPI), then starts the bouncer. Each keeps its own identity: the
// machine logs in with the agent certificate, and the bouncer with the
// bouncer certificate or with its key (not with the machine's
// certificate, which LAPI would refuse for a bouncer: wrong OU), and
// sees what the machine pushed.
func TestBridgeAndBouncerInOneProcess(t *testing.T) {
	needLAPI(t)
	for _, c := range []struct {
		name    string
		opts    func(*lapitest.TLSFiles) bouncer.Options
		wantTLS bool
	}{
		{"bouncer key", func(f *lapitest.TLSFiles) bouncer.Options {
			return bouncer.Options{StreamOptions: bouncer.StreamOptions{APIKey: bouncerKey, CACertPath: f.CA}}
		}, false},
		{"bouncer certificate", func(f *lapitest.TLSFiles) bouncer.Options {
			return bouncer.Options{StreamOptions: bouncer.StreamOptions{CertPath: f.BouncerCert, KeyPath: f.BouncerKey, CACertPath: f.CA}}
		}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			l, files := lapitest.StartTLS(t)
			l.Cscli(t, "bouncers", "add", "tls-key-bouncer", "-k", bouncerKey)
			m := machine(t, l, lapi.Options{CertPath: files.AgentCert, KeyPath: files.AgentKey, CACertPath: files.CA})
			r := startBouncer(t, l, c.opts(files))
			p := netip.MustParsePrefix("192.0.2.61/32")
			if _, err := m.Push(context.Background(), hour(p), time.Now()); err != nil {
				t.Fatalf("machine push: %v", err)
			}
			if !bridgetest.Poll(20*time.Second, func() bool { return r.rec.Has(p) }) {
				t.Fatalf("the bouncer never received the machine's decision (stats %+v)", r.b.Stats())
			}
			assertIdentities(t, l, c.wantTLS)
		})
	}
}

// assertIdentities wants the machine registered by its certificate and
// the bouncer by its certificate only when it was given one.
func assertIdentities(t *testing.T, l *lapitest.LAPI, bouncerTLS bool) {
	t.Helper()
	agent := lapitest.Client{Name: lapitest.AgentCN + "@127.0.0.1", AuthType: "tls"}
	if got := l.Machines(t); !slices.Contains(got, agent) {
		t.Errorf("machines %+v lack %+v", got, agent)
	}
	tlsBouncer := lapitest.Client{Name: lapitest.BouncerCN + "@127.0.0.1", AuthType: "tls"}
	if got := l.Bouncers(t); slices.Contains(got, tlsBouncer) != bouncerTLS {
		t.Errorf("bouncers %+v: want %s registered: %v", got, tlsBouncer.Name, bouncerTLS)
	}
}
