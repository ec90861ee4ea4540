package lapitest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Organisational units and common names of the test client certificates.
// LAPI admits a client certificate whose OU is in its allowed list and
// registers it as CN@IP (here CN@127.0.0.1).
const (
	BouncerOU = "bouncer-ou"
	AgentOU   = "agent-ou"
	BouncerCN = "tls-bouncer"
	AgentCN   = "tls-agent"
)

// TLSFiles are the PEM files of a TLS LAPI's throw-away PKI.
type TLSFiles struct {
	CA                      string // the CA that signed everything below
	ServerCert, ServerKey   string // LAPI's, for 127.0.0.1 and localhost
	BouncerCert, BouncerKey string // OU BouncerOU, CN BouncerCN
	AgentCert, AgentKey     string // OU AgentOU, CN AgentCN
	// WrongCA is a CA that signed nothing LAPI uses: trusting it instead
	// of CA must make every handshake fail.
	WrongCA string
}

// issuer is a CA able to sign certificates.
type issuer struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// WritePKI generates the CAs and certificates into dir. ECDSA P-256 keeps
// generation fast; certificates last a day, which outlives any test.
func WritePKI(dir string) (*TLSFiles, error) {
	f := &TLSFiles{
		CA: filepath.Join(dir, "ca.pem"), WrongCA: filepath.Join(dir, "wrong-ca.pem"),
		ServerCert: filepath.Join(dir, "server.pem"), ServerKey: filepath.Join(dir, "server-key.pem"),
		BouncerCert: filepath.Join(dir, "bouncer.pem"), BouncerKey: filepath.Join(dir, "bouncer-key.pem"),
		AgentCert: filepath.Join(dir, "agent.pem"), AgentKey: filepath.Join(dir, "agent-key.pem"),
	}
	ca, err := newCA("lapitest CA", f.CA)
	if err != nil {
		return nil, err
	}
	if _, err := newCA("lapitest wrong CA", f.WrongCA); err != nil {
		return nil, err
	}
	server := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, c := range []struct {
		tmpl      *x509.Certificate
		cert, key string
	}{
		{server, f.ServerCert, f.ServerKey},
		{clientTemplate(BouncerCN, BouncerOU), f.BouncerCert, f.BouncerKey},
		{clientTemplate(AgentCN, AgentOU), f.AgentCert, f.AgentKey},
	} {
		if err := ca.issue(c.tmpl, c.cert, c.key); err != nil {
			return nil, err
		}
	}
	return f, nil
}

func clientTemplate(cn, ou string) *x509.Certificate {
	return &x509.Certificate{
		Subject:     pkix.Name{CommonName: cn, OrganizationalUnit: []string{ou}},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
}

// newCA creates a self-signed CA and writes its certificate to certPath;
// its key stays in memory.
func newCA(name, certPath string) (*issuer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		Subject: pkix.Name{CommonName: name}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	if err := stamp(tmpl); err != nil {
		return nil, err
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("creating %s: %w", name, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &issuer{cert: cert, key: key}, writePEM(certPath, "CERTIFICATE", der, 0o644)
}

// issue signs tmpl with a fresh key and writes the certificate and key.
func (ca *issuer) issue(tmpl *x509.Certificate, certPath, keyPath string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	if err := stamp(tmpl); err != nil {
		return err
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return fmt.Errorf("signing %s: %w", tmpl.Subject.CommonName, err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := writePEM(certPath, "CERTIFICATE", der, 0o644); err != nil {
		return err
	}
	return writePEM(keyPath, "PRIVATE KEY", pkcs8, 0o600)
}

// stamp gives a certificate a random serial and a validity that starts an
// hour ago, so that clock skew between test steps never matters.
func stamp(tmpl *x509.Certificate) error {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return err
	}
	tmpl.SerialNumber = serial
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(24 * time.Hour)
	return nil
}

func writePEM(path, kind string, der []byte, mode os.FileMode) error {
	b := pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der})
	if err := os.WriteFile(path, b, mode); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
