package config

import (
	"crypto/tls"
	"crypto/x509"
	"os"
)

// The LAPI clients load their TLS files when they start: the machine
// client (bridge/lapi) refuses a certificate and key that do not load and
// a CA file without a certificate; the bouncer's (go-cs-bouncer) refuses
// the pair and ignores such a CA file. Loading them here as well makes
// `-t` refuse what a start would. Run only once checkFile passed.

// checkKeyPair loads a client certificate with its key.
func checkKeyPair(certKey, keyKey, certPath, keyPath string) error {
	if _, err := tls.LoadX509KeyPair(certPath, keyPath); err != nil {
		return invalid(certKey, "does not load with %s: %v", keyKey, err)
	}
	return nil
}

// checkCAFile requires at least one PEM certificate in the file.
func checkCAFile(key, path string) error {
	pem, err := os.ReadFile(path)
	if err != nil {
		return invalid(key, "%v", err)
	}
	if !x509.NewCertPool().AppendCertsFromPEM(pem) {
		return invalid(key, "no PEM certificate in %q", path)
	}
	return nil
}
