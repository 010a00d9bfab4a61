package tap

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/weft-mesh/weft/internal/spiffe"
)

// A proxy's tap endpoint is on its admin port, which anyone on the host
// can reach, so a tap must prove it comes from an operator. The control
// plane holds the mesh CA; for each tap it signs a token with the key of
// a short-lived certificate for the admin identity (the identity only the
// control plane's admin credential can get a certificate for: the CA
// refuses it to join tokens). The token names the proxy it is for and
// expires within MaxTokenTTL; the proxy checks the chain against the mesh
// roots it already trusts for mutual TLS, the identity, the node, the
// expiry and the signature. No secret is shared with or stored by the proxy,
// and a token seen on loopback opens only that proxy for minutes.

// Identity is the SPIFFE ID a tap token's certificate must have: the
// control plane's admin identity (authz.AdminIdentity).
var Identity = spiffe.New("weft-system", "weft-admin")

// MaxTokenTTL bounds how long a token is valid.
const MaxTokenTTL = 10 * time.Minute

// ErrToken is wrapped by every refusal of Verify.
var ErrToken = errors.New("tap token refused")

// claims are a token's signed part.
type claims struct {
	Node    string   `json:"node"`
	Expires int64    `json:"exp"`   // unix seconds
	Chain   [][]byte `json:"chain"` // DER, leaf first
}

// Sign returns a token for proxy node, valid until exp, signed by key,
// the private key of chain[0].
func Sign(key crypto.Signer, chain []*x509.Certificate, node string, exp time.Time) (string, error) {
	if len(chain) == 0 {
		return "", errors.New("signing a tap token: no certificate")
	}
	c := claims{Node: node, Expires: exp.Unix()}
	for _, cert := range chain {
		c.Chain = append(c.Chain, cert.Raw)
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("signing a tap token: %w", err)
	}
	sum := sha256.Sum256(payload)
	sig, err := key.Sign(rand.Reader, sum[:], crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("signing a tap token: %w", err)
	}
	enc := base64.RawURLEncoding
	return enc.EncodeToString(payload) + "." + enc.EncodeToString(sig), nil
}

// Verify checks a token for proxy node at time now against the mesh
// roots. Every error wraps ErrToken.
func Verify(tok string, roots *x509.CertPool, node string, now time.Time) error {
	if roots == nil {
		return fmt.Errorf("%w: this proxy has no mesh certificate to check it with (a proxy on plaintext xDS cannot be tapped)", ErrToken)
	}
	p, s, ok := strings.Cut(tok, ".")
	if !ok {
		return fmt.Errorf("%w: malformed", ErrToken)
	}
	enc := base64.RawURLEncoding
	payload, err1 := enc.DecodeString(p)
	sig, err2 := enc.DecodeString(s)
	var c claims
	if err := errors.Join(err1, err2); err != nil || json.Unmarshal(payload, &c) != nil || len(c.Chain) == 0 {
		return fmt.Errorf("%w: malformed", ErrToken)
	}
	if c.Node != node {
		return fmt.Errorf("%w: it is for proxy %q, not %q", ErrToken, c.Node, node)
	}
	exp := time.Unix(c.Expires, 0)
	if !now.Before(exp) || exp.Sub(now) > MaxTokenTTL {
		return fmt.Errorf("%w: expired or valid for too long (%s)", ErrToken, exp.UTC().Format(time.RFC3339))
	}
	certs := make([]*x509.Certificate, len(c.Chain))
	for i, der := range c.Chain {
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return fmt.Errorf("%w: certificate %d: %v", ErrToken, i, err)
		}
		certs[i] = cert
	}
	inter := x509.NewCertPool()
	for _, cert := range certs[1:] {
		inter.AddCert(cert)
	}
	if _, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return fmt.Errorf("%w: its certificate is not from the mesh CA: %v", ErrToken, err)
	}
	id, err := spiffe.FromCert(certs[0])
	if err != nil || id.Namespace != Identity.Namespace || id.ServiceAccount != Identity.ServiceAccount {
		return fmt.Errorf("%w: its certificate is not the admin identity %s", ErrToken, Identity)
	}
	pub, ok := certs[0].PublicKey.(*ecdsa.PublicKey)
	sum := sha256.Sum256(payload)
	if !ok || !ecdsa.VerifyASN1(pub, sum[:], sig) {
		return fmt.Errorf("%w: bad signature", ErrToken)
	}
	return nil
}
