// Package token issues and verifies join tokens: short-lived HMAC-SHA256
// signed tokens, weft.v1.<base64url payload>.<base64url signature>, that let
// a new proxy obtain its first certificate for one namespace and service
// account. The key lives under DATA_DIR/ca/token-key (0600).
package token

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/weft-mesh/weft/internal/spiffe"
)

// prefix starts every token; the version is signed with the payload.
const prefix = "weft.v1."

// KeyFile is the key's file under DATA_DIR/ca.
const KeyFile = "token-key"

// keySize is the HMAC key's size in bytes.
const keySize = 32

// MaxTTL bounds a token's validity.
const MaxTTL = 30 * 24 * time.Hour

// Errors of Verify, wrapped with details; check them with errors.Is.
var (
	ErrMalformed    = errors.New("malformed join token")
	ErrBadSignature = errors.New("join token signature is not valid (issued by another control plane, or altered)")
	ErrExpired      = errors.New("join token expired")
)

// payload is what a token binds.
type payload struct {
	Namespace      string `json:"ns"`
	ServiceAccount string `json:"sa"`
	Expiry         int64  `json:"exp"` // Unix seconds
	// CAPins are the trust bundle's roots, "sha256:" + hex SHA-256 of each
	// root's SubjectPublicKeyInfo (as kubeadm's discovery hash): with them
	// a new proxy authenticates the control plane before it has the bundle.
	CAPins []string `json:"ca,omitempty"`
}

// Issuer issues and verifies tokens with one key. It is safe for concurrent use.
type Issuer struct {
	key  []byte
	now  func() time.Time
	pins []string
}

// PinCA makes the tokens issued from now on carry the pins of the CA's
// roots (ca.CA.Pins). Call it before the issuer is shared.
func (i *Issuer) PinCA(pins []string) { i.pins = pins }

// New returns an issuer with the key DATA_DIR/ca/token-key, generated on
// first use; an empty dataDir keeps a fresh key in memory only.
func New(dataDir string) (*Issuer, error) {
	if dataDir == "" {
		key := make([]byte, keySize)
		rand.Read(key)
		return &Issuer{key: key, now: time.Now}, nil
	}
	dir := filepath.Join(dataDir, "ca")
	name := filepath.Join(dir, KeyFile)
	key, err := os.ReadFile(name)
	switch {
	case err == nil:
		if len(key) < keySize {
			return nil, fmt.Errorf("join token key %s: %d bytes, want %d; delete it to generate a new one (outstanding tokens become invalid)", name, len(key), keySize)
		}
		return &Issuer{key: key, now: time.Now}, nil
	case !errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("join token key: %w", err)
	}
	key = make([]byte, keySize)
	rand.Read(key)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("join token key: %w", err)
	}
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, key, 0o600); err != nil {
		return nil, fmt.Errorf("join token key: %w", err)
	}
	if err := os.Rename(tmp, name); err != nil {
		return nil, fmt.Errorf("join token key: %w", err)
	}
	return &Issuer{key: key, now: time.Now}, nil
}

// NewWithKey returns an issuer with the given key (one shared by several
// control-plane replicas, or a test's).
func NewWithKey(key []byte, now func() time.Time) *Issuer {
	if now == nil {
		now = time.Now
	}
	return &Issuer{key: key, now: now}
}

// Issue returns a token for service account sa of namespace ns, valid for ttl.
func (i *Issuer) Issue(ns, sa string, ttl time.Duration) (string, error) {
	if err := spiffe.New(ns, sa).Validate(); err != nil {
		return "", fmt.Errorf("join token: %w", err)
	}
	if ttl <= 0 || ttl > MaxTTL {
		return "", fmt.Errorf("join token: ttl %s must be positive and at most %s", ttl, MaxTTL)
	}
	p, err := json.Marshal(payload{Namespace: ns, ServiceAccount: sa, Expiry: i.now().Add(ttl).Unix(), CAPins: i.pins})
	if err != nil {
		return "", err
	}
	signed := prefix + base64.RawURLEncoding.EncodeToString(p)
	return signed + "." + base64.RawURLEncoding.EncodeToString(i.mac(signed)), nil
}

// IsJoinToken reports whether tok has the form of a join token (whether
// or not it is valid), as opposed to, say, a Kubernetes service-account token.
func IsJoinToken(tok string) bool { return strings.HasPrefix(tok, prefix) }

// Verify checks a token's form, signature and expiry, and returns the
// namespace and service account it binds.
func (i *Issuer) Verify(tok string) (ns, sa string, err error) {
	rest, ok := strings.CutPrefix(tok, prefix)
	if !ok {
		return "", "", fmt.Errorf("%w: want %s<payload>.<signature>", ErrMalformed, prefix)
	}
	body, sig, ok := strings.Cut(rest, ".")
	if !ok || body == "" || sig == "" || strings.Contains(sig, ".") {
		return "", "", fmt.Errorf("%w: want %s<payload>.<signature>", ErrMalformed, prefix)
	}
	gotMAC, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		return "", "", fmt.Errorf("%w: signature is not base64url", ErrMalformed)
	}
	if !hmac.Equal(gotMAC, i.mac(prefix+body)) {
		return "", "", ErrBadSignature
	}
	raw, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil {
		return "", "", fmt.Errorf("%w: payload is not base64url", ErrMalformed)
	}
	var p payload
	if err := json.Unmarshal(raw, &p); err != nil {
		return "", "", fmt.Errorf("%w: payload: %v", ErrMalformed, err)
	}
	if err := spiffe.New(p.Namespace, p.ServiceAccount).Validate(); err != nil {
		return "", "", fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if exp := time.Unix(p.Expiry, 0); !i.now().Before(exp) {
		return "", "", fmt.Errorf("%w at %s (for %s/%s); create a new one with `weft token create`",
			ErrExpired, exp.UTC().Format(time.RFC3339), p.Namespace, p.ServiceAccount)
	}
	return p.Namespace, p.ServiceAccount, nil
}

func (i *Issuer) mac(s string) []byte {
	m := hmac.New(sha256.New, i.key)
	m.Write([]byte(s))
	return m.Sum(nil)
}
