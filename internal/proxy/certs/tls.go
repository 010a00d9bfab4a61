package certs

import (
	"cmp"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/weft-mesh/weft/internal/spiffe"
)

// ALPN protocols of Istio's sidecar-to-sidecar mTLS: a client offers
// ALPNPeerExchange then ALPNIstio (the peer-metadata exchange variant
// first, as Istio's sidecars).
const (
	ALPNPeerExchange = "istio-peer-exchange"
	ALPNIstio        = "istio"
)

// serverALPN is what ServerTLSConfig accepts, in order of preference.
var serverALPN = []string{ALPNPeerExchange, ALPNIstio, "h2", "http/1.1"}

// SNI returns the server name Istio's sidecars send to a peer sidecar:
// outbound_.PORT_.SUBSET_.HOST (SUBSET empty for the whole service), e.g.
// outbound_.9080_.v1_.reviews.default.svc.cluster.local.
func SNI(port uint32, subset, host string) string {
	return fmt.Sprintf("outbound_.%d_.%s_.%s", port, subset, host)
}

// ErrNoCertificate is returned by handshakes before the first certificate.
var ErrNoCertificate = errors.New("no certificate yet: the certificate client has not got one from the control plane")

func (c *Client) certificate() (*tls.Certificate, error) {
	st := c.cur.Load()
	if st == nil {
		return nil, ErrNoCertificate
	}
	return st.cert, nil
}

// ServerTLSConfig returns the TLS configuration of the proxy's inbound mTLS:
// it presents the current certificate, requires a client certificate that
// chains to the current trust bundle, and, when verifyPeer is not nil,
// hands the client's SPIFFE ID to it (an error refuses the handshake).
func (c *Client) ServerTLSConfig(verifyPeer func(spiffe.ID) error) *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return c.certificate() },
		// Verified below against the bundle of the moment, not a fixed pool.
		ClientAuth: tls.RequireAnyClientCert,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			id, err := c.verifyPeer(raw, x509.ExtKeyUsageClientAuth)
			if err != nil {
				return err
			}
			if verifyPeer != nil {
				return verifyPeer(id)
			}
			return nil
		},
		NextProtos: slices.Clone(serverALPN),
	}
}

// ClientTLSConfig returns the TLS configuration of the proxy's outbound
// mTLS to a peer sidecar: SNI sni (see SNI), ALPN istio-peer-exchange and
// istio, the current certificate, and a server certificate that chains to
// the current bundle and whose SPIFFE ID is one of allowedPeers (any ID from
// the bundle when allowedPeers is empty).
func (c *Client) ClientTLSConfig(sni string, allowedPeers []spiffe.ID) *tls.Config {
	allowed := slices.Clone(allowedPeers)
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		ServerName: sni,
		// SNI is a routing key here, not a host name: the peer is
		// authenticated by its SPIFFE ID below.
		InsecureSkipVerify:   true,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return c.certificate() },
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			id, err := c.verifyPeer(raw, x509.ExtKeyUsageServerAuth)
			if err != nil {
				return err
			}
			return checkAllowed(id, allowed)
		},
		NextProtos: []string{ALPNPeerExchange, ALPNIstio},
	}
}

func checkAllowed(id spiffe.ID, allowed []spiffe.ID) error {
	if len(allowed) == 0 || slices.Contains(allowed, id) {
		return nil
	}
	names := make([]string, len(allowed))
	for i, a := range allowed {
		names[i] = a.String()
	}
	return fmt.Errorf("peer identity %s is not allowed here (want %s)", id, strings.Join(names, " or "))
}

// DialOption returns the transport credentials of the proxy's xDS
// connection to the control plane's :15012: the current certificate (get
// the first one with Start) and a server that chains to the current bundle
// with the control plane's identity.
func (c *Client) DialOption() grpc.DialOption {
	cfg := &tls.Config{
		MinVersion:           tls.VersionTLS12,
		InsecureSkipVerify:   true, // verified below: bundle + control plane identity
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return c.certificate() },
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			id, err := c.verifyPeer(raw, x509.ExtKeyUsageServerAuth)
			if err != nil {
				return fmt.Errorf("control plane: %w", err)
			}
			return checkAllowed(id, []spiffe.ID{c.opts.ControlPlane})
		},
	}
	return grpc.WithTransportCredentials(credentials.NewTLS(cfg))
}

// TrustBundle returns the current bundle's pool (nil before the first certificate).
func (c *Client) TrustBundle() *x509.CertPool {
	if st := c.cur.Load(); st != nil {
		return st.bundle
	}
	return nil
}

// verifyPeer checks a peer's chain against the current bundle and returns
// its SPIFFE ID.
func (c *Client) verifyPeer(raw [][]byte, usage x509.ExtKeyUsage) (spiffe.ID, error) {
	st := c.cur.Load()
	if st == nil {
		return spiffe.ID{}, fmt.Errorf("cannot verify the peer: %w", ErrNoCertificate)
	}
	leaf, err := verifyChain(raw, st.bundle, usage, time.Now())
	if err != nil {
		return spiffe.ID{}, err
	}
	id, err := spiffe.FromCert(leaf)
	if err != nil {
		return spiffe.ID{}, fmt.Errorf("peer certificate has no SPIFFE identity: %w", err)
	}
	return id, nil
}

// verifyChain verifies a DER chain (leaf first) against roots at now, with
// errors that say which check failed.
func verifyChain(raw [][]byte, roots *x509.CertPool, usage x509.ExtKeyUsage, now time.Time) (*x509.Certificate, error) {
	if len(raw) == 0 {
		return nil, errors.New("peer sent no certificate")
	}
	certs := make([]*x509.Certificate, len(raw))
	for i, der := range raw {
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("peer certificate: %w", err)
		}
		certs[i] = cert
	}
	leaf := certs[0]
	if now.After(leaf.NotAfter) {
		return nil, fmt.Errorf("peer certificate (serial %s) expired at %s", leaf.SerialNumber, leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	if now.Before(leaf.NotBefore) {
		return nil, fmt.Errorf("peer certificate (serial %s) is not valid before %s", leaf.SerialNumber, leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	inter := x509.NewCertPool()
	for _, ic := range certs[1:] {
		inter.AddCert(ic)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
		return nil, fmt.Errorf("peer certificate is not from the mesh CA (it does not chain to the trust bundle): %w", err)
	}
	return leaf, nil
}

// controlPlaneTLS is the TLS configuration of a CreateCertificate call:
// with the current certificate and bundle, or, for the first one, with the
// token's pins and Options.RootCAs to authenticate the control plane.
func (c *Client) controlPlaneTLS(useCert bool, token string) (*tls.Config, error) {
	st := c.cur.Load()
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: true} // verified below
	if useCert {
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return st.cert, nil }
	}
	var roots []*x509.Certificate
	if len(c.opts.RootCAs) > 0 {
		var err error
		if roots, err = parseCerts(c.opts.RootCAs); err != nil {
			return nil, fmt.Errorf("RootCAs: %w", err)
		}
	}
	pins := tokenPins(cmp.Or(token, c.opts.Token))
	if st == nil && len(roots) == 0 && len(pins) == 0 {
		return nil, errors.New("cannot authenticate the control plane: the token pins no CA and no root certificates were given (--root-cert-file)")
	}
	cfg.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
		pool := x509.NewCertPool()
		if st != nil {
			pool = st.bundle.Clone()
		}
		for _, r := range roots {
			pool.AddCert(r)
		}
		// The server sends its trust anchor last: trust it if the token pins it.
		for _, der := range raw[min(1, len(raw)):] {
			if cert, err := x509.ParseCertificate(der); err == nil && slices.Contains(pins, pin(cert)) {
				pool.AddCert(cert)
			}
		}
		leaf, err := verifyChain(raw, pool, x509.ExtKeyUsageServerAuth, time.Now())
		if err != nil {
			return fmt.Errorf("control plane %s: %w", c.opts.Address, err)
		}
		id, err := spiffe.FromCert(leaf)
		if err != nil {
			return fmt.Errorf("control plane %s: %w", c.opts.Address, err)
		}
		return checkAllowed(id, []spiffe.ID{c.opts.ControlPlane})
	}
	return cfg, nil
}

// tokenPins reads the CA pins of a join token, weft.v1.<payload>.<sig>
// (the control plane checks the signature; the pins only serve to
// authenticate it, and a forged token gets no certificate anyway).
func tokenPins(tok string) []string {
	parts := strings.Split(tok, ".")
	if len(parts) != 4 || parts[0] != "weft" || parts[1] != "v1" {
		return nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return nil
	}
	var p struct {
		CA []string `json:"ca"`
	}
	if json.Unmarshal(raw, &p) != nil {
		return nil
	}
	return p.CA
}

// pin is "sha256:" + hex SHA-256 of the certificate's SubjectPublicKeyInfo.
func pin(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func parseCerts(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, err
		}
		certs = append(certs, cert)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM CERTIFICATE found")
	}
	return certs, nil
}
