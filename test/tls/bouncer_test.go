package tlstest

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bouncer"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bouncer/bouncertest"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/bridgetest"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/lapitest"
)

// bouncerKey is a secret: no log line may contain it.
const bouncerKey = "Bouncer-tls-7c1d2e3f4a5b"

// running is one bouncer.Run in the background.
type running struct {
	b    *bouncer.Bouncer
	rec  *bouncertest.Recorder
	log  *bridgetest.Buffer // the bouncer's own logger
	done chan struct{}      // closed when Run returns
	stop func() error       // cancels Run and returns its error
}

// startBouncer runs the embedded bouncer as the daemon does (bouncer.New
// then Run) with opts' TLS settings against l. It is stopped at test end.
func startBouncer(t *testing.T, l *lapitest.LAPI, opts bouncer.Options) *running {
	t.Helper()
	r := &running{rec: bouncertest.NewRecorder(true), log: &bridgetest.Buffer{}, done: make(chan struct{})}
	logger := logrus.New()
	logger.SetOutput(r.log)
	opts.APIURL, opts.UpdateFrequency, opts.UserAgent, opts.Log = l.URL, 200*time.Millisecond, "tls-test/1", logger
	r.b = bouncer.New(r.rec, opts)
	ctx, cancel := context.WithCancel(context.Background())
	var result error
	go func() { result = r.b.Run(ctx); close(r.done) }()
	r.stop = func() error {
		cancel()
		select {
		case <-r.done:
		case <-time.After(20 * time.Second):
			t.Fatal("bouncer.Run did not return after cancel")
		}
		return result
	}
	t.Cleanup(func() {
		_ = r.stop()
		if t.Failed() {
			t.Logf("bouncer log:\n%s", r.log.String())
		}
		if strings.Contains(r.log.String(), bouncerKey) {
			t.Error("the bouncer key reached the bouncer's log")
		}
	})
	return r
}

func (r *running) ended() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// assertReceives adds a decision with cscli once the bouncer has loaded
// LAPI's first answer, and wants it in the backend soon after.
func assertReceives(t *testing.T, l *lapitest.LAPI, r *running, ip string) {
	t.Helper()
	if !bridgetest.Poll(30*time.Second, func() bool { return r.rec.Reconciles() > 0 || r.ended() }) {
		t.Fatal("the bouncer never received LAPI's first answer")
	}
	if r.ended() {
		t.Fatalf("Run ended early: %v", r.stop())
	}
	l.Cscli(t, "decisions", "add", "-i", ip, "-d", "1h")
	p := netip.PrefixFrom(netip.MustParseAddr(ip), 32)
	if !bridgetest.Poll(15*time.Second, func() bool { return r.rec.Has(p) }) {
		t.Fatalf("the decision for %s never reached the backend (stats %+v)", ip, r.b.Stats())
	}
	if err := r.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// (a) API key over HTTPS, LAPI verified with ca_cert_path.
func TestBouncerAPIKeyWithCA(t *testing.T) {
	needLAPI(t)
	l, files := lapitest.StartTLS(t)
	l.Cscli(t, "bouncers", "add", "tls-key-bouncer", "-k", bouncerKey)
	r := startBouncer(t, l, bouncer.Options{StreamOptions: bouncer.StreamOptions{APIKey: bouncerKey, CACertPath: files.CA}})
	assertReceives(t, l, r, "192.0.2.41")
}

// (b) Client certificate instead of a key: LAPI admits it by its OU and
// registers the bouncer as CN@IP with auth type tls.
func TestBouncerClientCertificate(t *testing.T) {
	needLAPI(t)
	l, files := lapitest.StartTLS(t)
	r := startBouncer(t, l, bouncer.Options{StreamOptions: bouncer.StreamOptions{CertPath: files.BouncerCert, KeyPath: files.BouncerKey, CACertPath: files.CA}})
	assertReceives(t, l, r, "192.0.2.42")
	want := lapitest.Client{Name: lapitest.BouncerCN + "@127.0.0.1", AuthType: "tls"}
	if got := l.Bouncers(t); !slices.Contains(got, want) {
		t.Fatalf("LAPI's bouncers %+v lack %+v", got, want)
	}
}

// (c) A CA that did not sign LAPI's certificate: nothing is received,
// and the log names the certificate problem. go-cs-bouncer retries the
// first connection and logs why through logrus' standard logger.
func TestBouncerWrongCA(t *testing.T) {
	needLAPI(t)
	l, files := lapitest.StartTLS(t)
	l.Cscli(t, "bouncers", "add", "tls-key-bouncer", "-k", bouncerKey)
	l.Cscli(t, "decisions", "add", "-i", "192.0.2.43", "-d", "1h")
	std := captureStdLog(t)
	r := startBouncer(t, l, bouncer.Options{StreamOptions: bouncer.StreamOptions{APIKey: bouncerKey, CACertPath: files.WrongCA}})
	const why = "x509: certificate signed by unknown authority"
	if !bridgetest.Poll(15*time.Second, func() bool { return strings.Contains(std.String(), why) }) {
		t.Fatalf("no log line says %q:\n%s", why, std.String())
	}
	if err := r.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if n, s := r.rec.Reconciles(), r.b.Stats(); n != 0 || s.Ticks != 0 || s.Decisions != 0 {
		t.Fatalf("received something through an untrusted certificate: %d loads, stats %+v", n, s)
	}
	if strings.Contains(std.String(), bouncerKey) {
		t.Fatal("the bouncer key reached the log")
	}
}

// (d) insecure_skip_verify without a CA: LAPI's certificate, which no
// system root signed, is accepted.
func TestBouncerInsecureSkipVerify(t *testing.T) {
	needLAPI(t)
	l, _ := lapitest.StartTLS(t)
	l.Cscli(t, "bouncers", "add", "tls-key-bouncer", "-k", bouncerKey)
	r := startBouncer(t, l, bouncer.Options{StreamOptions: bouncer.StreamOptions{APIKey: bouncerKey, InsecureSkipVerify: true}})
	assertReceives(t, l, r, "192.0.2.44")
}

// captureStdLog copies logrus' standard logger (go-cs-bouncer's) into a
// buffer until the test ends.
func captureStdLog(t *testing.T) *bridgetest.Buffer {
	t.Helper()
	buf := &bridgetest.Buffer{}
	std := logrus.StandardLogger()
	old := std.Out
	std.SetOutput(buf)
	t.Cleanup(func() { std.SetOutput(old) })
	return buf
}

// go-cs-bouncer refuses a key together with a certificate when Run
// starts; config validation rejects the pair for that reason (see
// config.TestBouncerKeyAndCertificateExclusive).
func TestBouncerKeyAndCertificateRefused(t *testing.T) {
	needLAPI(t)
	l, files := lapitest.StartTLS(t)
	r := startBouncer(t, l, bouncer.Options{StreamOptions: bouncer.StreamOptions{APIKey: bouncerKey, CertPath: files.BouncerCert, KeyPath: files.BouncerKey, CACertPath: files.CA}})
	select {
	case <-time.After(10 * time.Second):
		t.Fatal("Run accepted a key and a certificate together")
	case <-r.done:
	}
	err := r.stop()
	if err == nil || !strings.Contains(err.Error(), "cannot use both API key and certificate auth") {
		t.Fatalf("Run: %v, want go-cs-bouncer's refusal", err)
	}
	if strings.Contains(err.Error(), bouncerKey) {
		t.Fatal("the error shows the key")
	}
}
