// Package ca is the mesh's certificate authority: it keeps a root (generated
// under DATA_DIR/ca on first start) or signs with an intermediate the user
// brings, issues short-lived SPIFFE leaf certificates for CSRs whose identity
// matches the caller's, and serves Istio's IstioCertificateService and the
// authenticated xDS port (:15012) over TLS.
package ca

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/weft-mesh/weft/internal/spiffe"
)

// Validity of the certificates the CA issues.
const (
	DefaultTTL = 24 * time.Hour
	MaxTTL     = 7 * 24 * time.Hour
	// RootTTL is the validity of a generated root.
	RootTTL = 10 * 365 * 24 * time.Hour
	// backdate is how far NotBefore is set in the past, for clock skew.
	backdate = time.Minute
)

// Files under DATA_DIR/ca.
const (
	RootCertFile = "root-cert.pem"
	RootKeyFile  = "root-key.pem"
)

// ErrIdentityMismatch is wrapped by Sign's error when the CSR asks for an
// identity other than the caller's.
var ErrIdentityMismatch = errors.New("CSR identity does not match the caller's")

// Options configures a CA.
type Options struct {
	// DataDir holds the generated root under DATA_DIR/ca; empty keeps a
	// generated root in memory only (tests, throw-away meshes).
	DataDir string
	// CertFile and KeyFile, if set, are the user's CA certificate (usually an
	// intermediate) and its key, used instead of a generated root.
	CertFile, KeyFile string
	// ChainFile, if set, holds the certificates above CertFile up to the
	// root; its self-signed certificates join the trust bundle.
	ChainFile string
	// ExtraRootsFile, if set, holds more roots to trust (root rotation).
	ExtraRootsFile string
	// RootStore, if set, keeps the generated root instead of DataDir (on
	// Kubernetes, the Secret every replica shares).
	RootStore RootStore
	// Logger receives the CA's logs; nil discards them.
	Logger *slog.Logger
}

// CA issues workload certificates. Its methods are safe for concurrent use.
type CA struct {
	log    *slog.Logger
	signer crypto.Signer
	cert   *x509.Certificate
	// chain is the PEM of the certificates a leaf is sent with: the signing
	// certificate and the intermediates above it, without trust anchors.
	chain []byte
	roots []*x509.Certificate
	// bundle is the PEM of roots.
	bundle  []byte
	refused atomic.Int64
}

// New loads or creates the CA described by opts.
func New(opts Options) (*CA, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	c := &CA{log: opts.Logger.With("component", "ca")}
	var err error
	switch {
	case opts.CertFile != "" || opts.KeyFile != "":
		if opts.CertFile == "" || opts.KeyFile == "" {
			return nil, errors.New("CA: --ca-cert and --ca-key go together")
		}
		err = c.loadIntermediate(opts.CertFile, opts.KeyFile, opts.ChainFile)
	case opts.ChainFile != "":
		return nil, errors.New("CA: --ca-chain needs --ca-cert and --ca-key")
	case opts.RootStore != nil:
		err = c.loadOrCreateStoredRoot(opts.RootStore)
	default:
		err = c.loadOrCreateRoot(opts.DataDir)
	}
	if err != nil {
		return nil, err
	}
	if opts.ExtraRootsFile != "" {
		extra, err := readCerts(opts.ExtraRootsFile)
		if err != nil {
			return nil, fmt.Errorf("CA extra roots: %w", err)
		}
		c.roots = append(c.roots, extra...)
	}
	for _, r := range c.roots {
		c.bundle = append(c.bundle, encodeCert(r)...)
	}
	c.log.Info("CA ready", "subject", c.cert.Subject.String(), "not_after", c.cert.NotAfter, "roots", len(c.roots))
	return c, nil
}

// loadOrCreateRoot loads DATA_DIR/ca/root-{cert,key}.pem, generating them on
// first start.
func (c *CA) loadOrCreateRoot(dataDir string) error {
	var dir string
	if dataDir != "" {
		dir = filepath.Join(dataDir, "ca")
		certFile, keyFile := filepath.Join(dir, RootCertFile), filepath.Join(dir, RootKeyFile)
		if _, err := os.Stat(certFile); err == nil {
			if err := c.loadIntermediate(certFile, keyFile, ""); err != nil {
				return err
			}
			return nil
		} else if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("CA: %w", err)
		}
	}
	key, cert, err := newRoot()
	if err != nil {
		return err
	}
	c.signer, c.cert, c.roots = key, cert, []*x509.Certificate{cert}
	if dir == "" {
		return nil
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("CA: %w", err)
	}
	// The key first: a cert without its key would make the next start fail.
	if err := writeFile(filepath.Join(dir, RootKeyFile), keyPEM, 0o600); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(dir, RootCertFile), encodeCert(cert), 0o644); err != nil {
		return err
	}
	c.log.Info("generated a new root CA", "dir", dir)
	return nil
}

// newRoot generates a root key and its self-signed certificate.
func newRoot() (*ecdsa.PrivateKey, *x509.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("CA: generating the root key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "weft root CA", Organization: []string{spiffe.DefaultTrustDomain}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(RootTTL),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("CA: creating the root: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	return key, cert, err
}

func encodeKey(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("CA: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// loadIntermediate loads a CA certificate, its key and the chain above it.
func (c *CA) loadIntermediate(certFile, keyFile, chainFile string) error {
	certs, err := readCerts(certFile)
	if err != nil {
		return fmt.Errorf("CA certificate: %w", err)
	}
	cert := certs[0]
	if !cert.IsCA || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return fmt.Errorf("CA certificate %s: not a CA certificate (basicConstraints CA:true and keyUsage keyCertSign are needed)", certFile)
	}
	if time.Now().After(cert.NotAfter) {
		return fmt.Errorf("CA certificate %s expired at %s", certFile, cert.NotAfter.Format(time.RFC3339))
	}
	signer, err := readKey(keyFile)
	if err != nil {
		return fmt.Errorf("CA key: %w", err)
	}
	if !publicKeysEqual(signer.Public(), cert.PublicKey) {
		return fmt.Errorf("CA key %s does not match the certificate %s", keyFile, certFile)
	}
	above := certs[1:]
	if chainFile != "" {
		more, err := readCerts(chainFile)
		if err != nil {
			return fmt.Errorf("CA chain: %w", err)
		}
		above = append(above, more...)
	}
	all := append([]*x509.Certificate{cert}, above...)
	var roots []*x509.Certificate
	var chain []byte
	for _, ac := range all {
		if selfSigned(ac) {
			roots = append(roots, ac)
		} else {
			chain = append(chain, encodeCert(ac)...)
		}
	}
	if len(roots) == 0 {
		// No root given: the topmost certificate is the trust anchor.
		top := all[len(all)-1]
		roots = []*x509.Certificate{top}
		chain = nil
		for _, ac := range all[:len(all)-1] {
			chain = append(chain, encodeCert(ac)...)
		}
	}
	if err := verifyChain(cert, all[1:], roots); err != nil {
		return fmt.Errorf("CA certificate %s does not chain to its root: %w", certFile, err)
	}
	c.signer, c.cert, c.chain, c.roots = signer, cert, chain, roots
	return nil
}

func verifyChain(cert *x509.Certificate, intermediates, roots []*x509.Certificate) error {
	if len(roots) == 1 && roots[0].Equal(cert) {
		return nil
	}
	rp, ip := x509.NewCertPool(), x509.NewCertPool()
	for _, r := range roots {
		rp.AddCert(r)
	}
	for _, i := range intermediates {
		ip.AddCert(i)
	}
	_, err := cert.Verify(x509.VerifyOptions{Roots: rp, Intermediates: ip, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	return err
}

// TrustBundle returns the PEM of the roots proxies must trust (several
// during a root rotation).
func (c *CA) TrustBundle() []byte { return bytes.Clone(c.bundle) }

// Roots returns the roots of the trust bundle as a pool.
func (c *CA) Roots() *x509.CertPool {
	p := x509.NewCertPool()
	for _, r := range c.roots {
		p.AddCert(r)
	}
	return p
}

// Pins returns the pins of the bundle's roots: "sha256:" and the hex
// SHA-256 of each root's SubjectPublicKeyInfo. Join tokens carry them.
func (c *CA) Pins() []string {
	pins := make([]string, len(c.roots))
	for i, r := range c.roots {
		pins[i] = Pin(r)
	}
	return pins
}

// Pin returns a certificate's pin, "sha256:" + hex SHA-256 of its SubjectPublicKeyInfo.
func Pin(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Certificate returns the certificate the CA signs with.
func (c *CA) Certificate() *x509.Certificate { return c.cert }

// RefusedCSRs returns how many CSRs the CA has refused since it started;
// exported as the metric citadel_server_csr_sign_err_count, as Istio's.
func (c *CA) RefusedCSRs() int64 { return c.refused.Load() }

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return n
}

func selfSigned(c *x509.Certificate) bool {
	return bytes.Equal(c.RawIssuer, c.RawSubject) && c.CheckSignatureFrom(c) == nil
}

func encodeCert(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

func writeFile(name string, data []byte, perm os.FileMode) error {
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, data, perm); err != nil {
		return fmt.Errorf("CA: %w", err)
	}
	if err := os.Rename(tmp, name); err != nil {
		return fmt.Errorf("CA: %w", err)
	}
	return nil
}
