package lapitest

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"os"
	"strings"
	"testing"
)

// The TLS harness: LAPI serves HTTPS with the test CA, cscli reaches it
// through its credentials file (https URL + ca_cert_path), and a client
// that does not trust the CA is refused at the handshake.
func TestTLSHarnessRoundTrip(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real LAPI")
	}
	l, files := StartTLS(t)
	if !strings.HasPrefix(l.URL, "https://127.0.0.1:") {
		t.Fatalf("URL %q, want https on 127.0.0.1", l.URL)
	}
	l.Cscli(t, "decisions", "add", "-i", "192.0.2.10", "-d", "1h")
	if ds := l.Decisions(t, "cscli"); len(ds) != 1 || ds[0].Value != "192.0.2.10" {
		t.Fatalf("decisions over https: %+v", ds)
	}

	for name, ca := range map[string]string{"test CA": files.CA, "wrong CA": files.WrongCA} {
		_, err := clientTrusting(t, ca).Get(l.URL + "health")
		var unknown x509.UnknownAuthorityError
		switch {
		case ca == files.CA && err != nil:
			t.Errorf("%s: %v", name, err)
		case ca == files.WrongCA && !errors.As(err, &unknown):
			t.Errorf("%s: want an unknown-authority error, got %v", name, err)
		}
	}
}

func clientTrusting(t *testing.T, caPath string) *http.Client {
	t.Helper()
	pem, err := os.ReadFile(caPath)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("%s holds no certificate", caPath)
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}
