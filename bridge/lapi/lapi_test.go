package lapi_test

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bridge/lapi"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/lapitest"
)

// week gives each prefix a 168h decision.
func week(ps ...netip.Prefix) []lapi.Decision {
	out := make([]lapi.Decision, len(ps))
	for i, p := range ps {
		out[i] = lapi.Decision{Prefix: p, Duration: 168 * time.Hour}
	}
	return out
}

func newClient(t *testing.T, l *lapitest.LAPI, password string) *lapi.Client {
	t.Helper()
	c, err := lapi.New(lapi.Options{
		URL: l.URL, Login: "bridge-test", Password: password, UserAgent: "crowdsec-apiban-bridge/test",
		Origin: "apiban", Scenario: "apiban/sip-blocklist", Type: "ban", Timeout: 30 * time.Second,
		BatchSize: 2, Message: "APIBAN sip",
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Against a real LAPI: decisions pushed in several alerts show up in
// cscli with our origin, scenario, scope and duration, and Active reads
// exactly them back.
func TestPushAndReadBackAgainstRealLAPI(t *testing.T) {
	l := lapitest.Start(t)
	l.AddMachine(t, "bridge-test", "s3cret-Pw")
	c := newClient(t, l, "s3cret-Pw")
	ctx := context.Background()
	want := []netip.Prefix{
		netip.MustParsePrefix("192.0.2.1/32"), netip.MustParsePrefix("192.0.2.2/32"),
		netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("2001:db8::1/128"),
		netip.MustParsePrefix("2001:db8:5::/48"),
	}
	now := time.Now()
	if _, err := c.Push(ctx, week(want...), now); err != nil {
		t.Fatal(err)
	}
	// a cscli decision of another origin must not be read back as ours
	l.Cscli(t, "decisions", "add", "-i", "203.0.113.9", "-d", "1h")

	ds := l.Decisions(t, "apiban")
	var values []string
	for _, d := range ds {
		if d.Origin != "apiban" || d.Scenario != "apiban/sip-blocklist" || d.Type != "ban" {
			t.Errorf("decision fields: %+v", d)
		}
		wantScope := "Ip"
		if strings.Contains(d.Value, "/") {
			wantScope = "Range"
		}
		if d.Scope != wantScope {
			t.Errorf("%s: scope %s, want %s", d.Value, d.Scope, wantScope)
		}
		left, err := time.ParseDuration(d.Duration)
		if err != nil || left < 167*time.Hour || left > 168*time.Hour {
			t.Errorf("%s: duration %q, want about 168h", d.Value, d.Duration)
		}
		values = append(values, d.Value)
	}
	sort.Strings(values)
	wantValues := []string{"192.0.2.1", "192.0.2.2", "198.51.100.0/24", "2001:db8:5::/48", "2001:db8::1"}
	if strings.Join(values, ",") != strings.Join(wantValues, ",") {
		t.Fatalf("cscli shows %v, want %v", values, wantValues)
	}

	held, err := c.Active(ctx, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	active := held.Active
	if len(active) != len(want) {
		t.Fatalf("Active returned %d prefixes, want %d: %v", len(active), len(want), active)
	}
	for _, p := range want {
		until, ok := active[p]
		if !ok || until.Sub(now) < 167*time.Hour {
			t.Errorf("%s: active until %v (ok=%v)", p, until, ok)
		}
	}
}

func TestAllowlistsFromRealLAPI(t *testing.T) {
	l := lapitest.Start(t)
	l.AddMachine(t, "bridge-test", "s3cret-Pw")
	l.Cscli(t, "allowlists", "create", "trunks", "-d", "SIP trunks")
	l.Cscli(t, "allowlists", "add", "trunks", "198.51.100.7", "203.0.113.0/24")
	l.Cscli(t, "allowlists", "add", "trunks", "192.0.2.50", "-e", "1s")
	time.Sleep(1100 * time.Millisecond) // let the expiring entry lapse
	c := newClient(t, l, "s3cret-Pw")
	entries, err := c.Allowlists(context.Background(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Prefix.String())
		if !strings.Contains(e.Source, "trunks") {
			t.Errorf("source %q does not name the allowlist", e.Source)
		}
	}
	sort.Strings(got)
	if strings.Join(got, ",") != "198.51.100.7/32,203.0.113.0/24" {
		t.Fatalf("allowlist entries %v", got)
	}
}

func TestWrongPasswordFailsWithoutLeakingIt(t *testing.T) {
	l := lapitest.Start(t)
	l.AddMachine(t, "bridge-test", "right-password")
	c := newClient(t, l, "WRONG-pass-4711")
	_, err := c.Push(context.Background(), week(netip.MustParsePrefix("192.0.2.1/32")), time.Now())
	if err == nil {
		t.Fatal("push with a wrong password must fail")
	}
	if strings.Contains(err.Error(), "WRONG-pass-4711") {
		t.Fatalf("error leaks the password: %v", err)
	}
	if ds := l.Decisions(t, "apiban"); len(ds) != 0 {
		t.Fatalf("decisions pushed despite failed login: %v", ds)
	}
}

func TestScopeValue(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1/32": "Ip 192.0.2.1", "2001:db8::1/128": "Ip 2001:db8::1",
		"192.0.2.0/24": "Range 192.0.2.0/24", "2001:db8::/32": "Range 2001:db8::/32",
	} {
		s, v := lapi.ScopeValue(netip.MustParsePrefix(in))
		if s+" "+v != want {
			t.Errorf("%s: %s %s, want %s", in, s, v, want)
		}
	}
}

// A ca_cert_path file that holds no certificate is refused when the client
// is built (docs/configuration.md, TLS to LAPI), not at the first
// handshake; the error names the file.
func TestCAFileWithoutCertificateRefused(t *testing.T) {
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := lapi.New(lapi.Options{
		URL: "https://127.0.0.1:1/", Login: "bridge-test", Password: "x", UserAgent: "crowdsec-apiban-bridge/test",
		Origin: "apiban", Scenario: "apiban/sip-blocklist", Type: "ban", Timeout: time.Second, BatchSize: 2,
		CACertPath: ca,
	})
	if err == nil || !strings.Contains(err.Error(), ca+": no certificate found") {
		t.Fatalf("err %v, want the file named with no certificate found", err)
	}
}
