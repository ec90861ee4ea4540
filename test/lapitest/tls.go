package lapitest

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"testing"
)

// StartTLS is Start with LAPI serving HTTPS from a throw-away PKI made at
// test time: clients may log in with a certificate signed by TLS.CA (OU
// BouncerOU for bouncers, AgentOU for machines) as well as with keys and
// passwords. cscli trusts TLS.CA through its credentials file.
func StartTLS(t testing.TB) (*LAPI, *TLSFiles) {
	t.Helper()
	l, err := LaunchTLS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Stop)
	return l, l.TLS
}

// LaunchTLS is Launch with TLS (see StartTLS).
func LaunchTLS(dir string) (*LAPI, error) {
	return launch(dir, true)
}

// setupTLS writes the PKI and points URL and the readiness probe at HTTPS.
func (l *LAPI) setupTLS() error {
	pkiDir := l.path("pki")
	if err := os.MkdirAll(pkiDir, 0o700); err != nil {
		return err
	}
	files, err := WritePKI(pkiDir)
	if err != nil {
		return fmt.Errorf("test PKI: %w", err)
	}
	pem, err := os.ReadFile(files.CA)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	l.TLS = files
	l.URL = "https://" + l.addr + "/"
	l.health = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	return nil
}

// tlsSection is api.server.tls, indented to follow configTemplate. The
// default client_verification (VerifyClientCertIfGiven) keeps password and
// API key logins working beside certificates; ca_cert_path is the CA that
// client certificates must chain to.
func (l *LAPI) tlsSection() string {
	if l.TLS == nil {
		return ""
	}
	return fmt.Sprintf(`    tls:
      cert_file: %s
      key_file: %s
      ca_cert_path: %s
      bouncers_allowed_ou: [%s]
      agents_allowed_ou: [%s]
`, l.TLS.ServerCert, l.TLS.ServerKey, l.TLS.CA, BouncerOU, AgentOU)
}

// addCscliMachine registers the machine cscli logs in as. With TLS, cscli
// would write the http:// URL of listen_uri: it gets the https URL and
// the CA instead (cscli reads ca_cert_path from its credentials file).
func (l *LAPI) addCscliMachine() error {
	creds := l.path("local_api_credentials.yaml")
	args := []string{"machines", "add", "cscli-tests", "--auto", "-f", creds}
	if l.TLS != nil {
		args = append(args, "--url", l.URL)
	}
	if _, err := l.CscliErr(args...); err != nil {
		return err
	}
	if l.TLS == nil {
		return nil
	}
	f, err := os.OpenFile(creds, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(f, "ca_cert_path: %s\n", l.TLS.CA)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Client is one machine or bouncer as cscli lists it.
type Client struct {
	Name     string
	AuthType string // password, api-key or tls
}

// Bouncers lists the registered bouncers through cscli. A bouncer that
// authenticated with a certificate is named CN@IP with auth type tls.
func (l *LAPI) Bouncers(t testing.TB) []Client {
	t.Helper()
	var list []struct {
		Name     string `json:"name"`
		AuthType string `json:"auth_type"`
	}
	l.listJSON(t, "bouncers", &list)
	out := make([]Client, len(list))
	for i, b := range list {
		out[i] = Client{Name: b.Name, AuthType: b.AuthType}
	}
	return out
}

// Machines lists the registered machines through cscli; naming as for
// Bouncers.
func (l *LAPI) Machines(t testing.TB) []Client {
	t.Helper()
	var list []struct {
		Name     string `json:"machineId"`
		AuthType string `json:"auth_type"`
	}
	l.listJSON(t, "machines", &list)
	out := make([]Client, len(list))
	for i, m := range list {
		out[i] = Client{Name: m.Name, AuthType: m.AuthType}
	}
	return out
}

func (l *LAPI) listJSON(t testing.TB, kind string, v any) {
	t.Helper()
	out := l.Cscli(t, kind, "list", "-o", "json")
	if err := json.Unmarshal(out, v); err != nil {
		t.Fatalf("parsing cscli %s list: %v\n%s", kind, err, out)
	}
}
