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

// checkCertPair checks a certificate and its key given as certKey and
// keyKey: each requires the other, both files exist, and they load
// together. Every error is returned, as validate does.
func checkCertPair(certKey, certPath, keyKey, keyPath string) []error {
	var errs []error
	switch {
	case certPath != "" && keyPath == "":
		errs = append(errs, invalid(keyKey, "required when %s is set", certKey))
	case keyPath != "" && certPath == "":
		errs = append(errs, invalid(certKey, "required when %s is set", keyKey))
	}
	filesOK := true
	for _, f := range []struct{ key, path string }{{certKey, certPath}, {keyKey, keyPath}} {
		if err := checkFile(f.key, f.path); err != nil {
			errs = append(errs, err)
			filesOK = false
		}
	}
	if filesOK && certPath != "" && keyPath != "" {
		if err := checkKeyPair(certKey, keyKey, certPath, keyPath); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// checkKeyPair loads a certificate with its key.
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
