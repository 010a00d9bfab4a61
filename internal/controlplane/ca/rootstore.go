package ca

import (
	"errors"
	"fmt"
)

// RootStore keeps the CA's generated root where every control-plane
// replica finds it (on Kubernetes, the Secret weft-ca in weft-system), so
// that replicas are stateless and all sign with one root. Implementations
// must be safe for concurrent use.
type RootStore interface {
	// Load returns the stored root certificate and key (PEM); found is
	// false when none is stored yet.
	Load() (certPEM, keyPEM []byte, found bool, err error)
	// Create stores a new root; it returns an error wrapping ErrRootExists
	// when one was stored meanwhile (by another replica).
	Create(certPEM, keyPEM []byte) error
	// Describe names where the root is kept, for logs and errors.
	Describe() string
}

// ErrRootExists is wrapped by RootStore.Create when a root is already stored.
var ErrRootExists = errors.New("a CA root is already stored")

// loadOrCreateStoredRoot signs with the store's root, generating and
// storing one if there is none; if another replica stores one first, that
// one is used.
func (c *CA) loadOrCreateStoredRoot(st RootStore) error {
	certPEM, keyPEM, found, err := st.Load()
	if err != nil {
		return fmt.Errorf("CA root in %s: %w", st.Describe(), err)
	}
	if !found {
		key, cert, err := newRoot()
		if err != nil {
			return err
		}
		if keyPEM, err = encodeKey(key); err != nil {
			return err
		}
		certPEM = encodeCert(cert)
		switch err := st.Create(certPEM, keyPEM); {
		case errors.Is(err, ErrRootExists):
			c.log.Info("another replica stored the CA root first; using it", "store", st.Describe())
			if certPEM, keyPEM, found, err = st.Load(); err != nil || !found {
				return fmt.Errorf("CA root in %s: created by another replica but not readable (found %v): %v", st.Describe(), found, err)
			}
		case err != nil:
			return fmt.Errorf("storing the CA root in %s: %w", st.Describe(), err)
		default:
			c.log.Info("generated a new root CA", "store", st.Describe())
		}
	}
	return c.useRoot(st.Describe(), certPEM, keyPEM)
}

// useRoot signs with a root given as PEM.
func (c *CA) useRoot(source string, certPEM, keyPEM []byte) error {
	certs, err := ParseCerts(certPEM)
	if err != nil {
		return fmt.Errorf("CA root certificate in %s: %w", source, err)
	}
	key, err := parseKey(source, keyPEM)
	if err != nil {
		return fmt.Errorf("CA root key: %w", err)
	}
	cert := certs[0]
	if !cert.IsCA || !selfSigned(cert) {
		return fmt.Errorf("CA root in %s: not a self-signed CA certificate", source)
	}
	if !publicKeysEqual(key.Public(), cert.PublicKey) {
		return fmt.Errorf("CA root in %s: the key does not match the certificate", source)
	}
	c.signer, c.cert, c.roots = key, cert, certs[:1]
	return nil
}
