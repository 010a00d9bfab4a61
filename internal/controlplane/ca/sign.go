package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"

	"github.com/weft-mesh/weft/internal/spiffe"
)

// Sign issues a leaf certificate for a CSR (DER or PEM) made by the workload
// identity; it returns the PEM of the leaf followed by the intermediates
// (without the roots: see TrustBundle). The CSR's signature must be valid
// and its only URI SAN must be identity. ttl 0 means DefaultTTL; more than
// MaxTTL is refused. Every refusal is logged and counted (RefusedCSRs).
func (c *CA) Sign(csr []byte, identity spiffe.ID, ttl time.Duration) ([]byte, error) {
	chain, err := c.sign(csr, identity, ttl)
	if err != nil {
		c.refused.Add(1)
		c.log.Warn("refused a CSR", "identity", identity.String(), "error", err)
		return nil, err
	}
	return chain, nil
}

func (c *CA) sign(csrData []byte, identity spiffe.ID, ttl time.Duration) ([]byte, error) {
	if err := identity.Validate(); err != nil {
		return nil, fmt.Errorf("caller identity: %w", err)
	}
	switch {
	case ttl == 0:
		ttl = DefaultTTL
	case ttl < 0:
		return nil, fmt.Errorf("requested validity %s is negative", ttl)
	case ttl > MaxTTL:
		return nil, fmt.Errorf("requested validity %s is longer than the maximum %s", ttl, MaxTTL)
	}
	if b, _ := pem.Decode(csrData); b != nil {
		if b.Type != "CERTIFICATE REQUEST" && b.Type != "NEW CERTIFICATE REQUEST" {
			return nil, fmt.Errorf("CSR: PEM block is %q, want CERTIFICATE REQUEST", b.Type)
		}
		csrData = b.Bytes
	}
	csr, err := x509.ParseCertificateRequest(csrData)
	if err != nil {
		return nil, fmt.Errorf("CSR: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("CSR signature: %w", err)
	}
	if len(csr.URIs) != 1 {
		return nil, fmt.Errorf("%w: CSR has %d URI SANs, want exactly one: %s", ErrIdentityMismatch, len(csr.URIs), identity)
	}
	if got := csr.URIs[0].String(); got != identity.String() {
		return nil, fmt.Errorf("%w: CSR asks for %s but the caller is %s", ErrIdentityMismatch, got, identity)
	}
	return c.issue(csr.PublicKey, identity, nil, nil, ttl)
}

// issue signs a leaf for pub with the identity's URI SAN and the given DNS
// and IP SANs; it returns the leaf and intermediates as PEM.
func (c *CA) issue(pub crypto.PublicKey, identity spiffe.ID, dns []string, ips []net.IP, ttl time.Duration) ([]byte, error) {
	now := time.Now()
	notAfter := now.Add(ttl)
	if notAfter.After(c.cert.NotAfter) {
		notAfter = c.cert.NotAfter // a leaf never outlives its CA
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		NotBefore:    now.Add(-backdate),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		URIs:         []*url.URL{identity.URL()},
		DNSNames:     dns,
		IPAddresses:  ips,
		// BasicConstraintsValid with IsCA false: a leaf can sign nothing.
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, pub, c.signer)
	if err != nil {
		return nil, fmt.Errorf("signing the certificate for %s: %w", identity, err)
	}
	out := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return append(out, c.chain...), nil
}

// IssueServing issues a certificate with a fresh key held in memory, for
// the control plane's own TLS server: identity as URI SAN plus DNS and IP
// SANs. Its chain ends with the trust anchor, so that a proxy holding only
// the pins of a join token can check it.
func (c *CA) IssueServing(identity spiffe.ID, dns []string, ips []net.IP, ttl time.Duration) (*tls.Certificate, error) {
	if ttl <= 0 || ttl > MaxTTL {
		ttl = DefaultTTL
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	chain, err := c.issue(key.Public(), identity, dns, ips, ttl)
	if err != nil {
		return nil, err
	}
	chain = append(chain, encodeCert(c.roots[0])...)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	cert, err := tls.X509KeyPair(chain, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
	if err != nil {
		return nil, errors.Join(errors.New("building the serving certificate"), err)
	}
	return &cert, nil
}
