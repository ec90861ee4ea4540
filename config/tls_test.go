package config

import (
	"strings"
	"testing"
)

// go-cs-bouncer refuses an API key together with a client certificate
// ("cannot use both API key and certificate auth") only when the bouncer
// starts; `-t` must say so first, without showing the key.
func TestBouncerKeyAndCertificateExclusive(t *testing.T) {
	_, _, err := loadBouncer(t, bouncerOn+"  cert_path: {dir}/exists.pem\n  key_path: {dir}/exists.pem\n")
	want := "config: bouncer.api_key: must be empty when bouncer.cert_path and bouncer.key_path are set"
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("error %v, want %q...", err, want)
	}
	if strings.Contains(err.Error(), "TOPSECRET") {
		t.Fatalf("error shows the key: %v", err)
	}

	// Either one alone is fine.
	c, _, err := loadBouncer(t, withPKI(t).Replace("bouncer:\n  enabled: true\n  cert_path: {cert}\n  key_path: {key}\n  ca_cert_path: {ca}\n"))
	if err != nil {
		t.Fatalf("certificate alone: %v", err)
	}
	if c.Bouncer.APIKey != "" || c.Bouncer.CertPath == "" {
		t.Fatalf("bouncer section %+v", c.Bouncer)
	}
}

// A pair that does not load is refused by -t, as go-cs-bouncer refuses it
// at start; a CA file without a certificate is not, as go-cs-bouncer
// ignores it (the handshake then fails; docs/configuration.md).
func TestBouncerCertificateLoads(t *testing.T) {
	_, dir, err := loadBouncer(t, "bouncer:\n  enabled: true\n  cert_path: {dir}/exists.pem\n  key_path: {dir}/exists.pem\n")
	want := "config: bouncer.cert_path: does not load with bouncer.key_path: tls: failed to find any PEM data in certificate input"
	if err == nil || err.Error() != want {
		t.Fatalf("error %v, want %q (in %s)", err, want, dir)
	}
	if _, _, err := loadBouncer(t, bouncerOn+"  ca_cert_path: {dir}/exists.pem\n"); err != nil {
		t.Fatalf("CA file without a certificate: %v", err)
	}
}
