// Package casecret keeps the CA's root certificate and key in a Kubernetes
// Secret (weft-ca in weft-system), so that every control-plane replica
// signs with the same root: the first replica creates it, the others read
// it, and a replica that loses the race to create it reads the winner's.
package casecret

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/weft-mesh/weft/internal/controlplane/ca"
)

// Defaults of the Secret.
const (
	DefaultName      = "weft-ca"
	DefaultNamespace = "weft-system"
	// CertKey and KeyKey are the Secret's data keys (as Istio's istio-ca-secret).
	CertKey = "ca-cert.pem"
	KeyKey  = "ca-key.pem"
	// TokenKeyKey holds the join-token HMAC key shared by the replicas.
	TokenKeyKey  = "token-key"
	tokenKeySize = 32
)

// timeout bounds one API call.
const timeout = 15 * time.Second

// Store is a ca.RootStore in a Secret. It is safe for concurrent use.
type Store struct {
	client          kubernetes.Interface
	namespace, name string
}

var _ ca.RootStore = (*Store)(nil)

// New returns the store of Secret namespace/name (the defaults when empty).
func New(client kubernetes.Interface, namespace, name string) *Store {
	if namespace == "" {
		namespace = DefaultNamespace
	}
	if name == "" {
		name = DefaultName
	}
	return &Store{client: client, namespace: namespace, name: name}
}

// Describe names the Secret.
func (s *Store) Describe() string { return fmt.Sprintf("Secret %s/%s", s.namespace, s.name) }

// Load reads the Secret; found is false when it does not exist.
func (s *Store) Load() (certPEM, keyPEM []byte, found bool, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	sec, err := s.client.CoreV1().Secrets(s.namespace).Get(ctx, s.name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil, false, nil
	case err != nil:
		return nil, nil, false, err
	}
	certPEM, keyPEM = sec.Data[CertKey], sec.Data[KeyKey]
	if len(certPEM) == 0 || len(keyPEM) == 0 {
		return nil, nil, false, fmt.Errorf("%s lacks %s or %s; delete it to generate a new root (every workload certificate becomes untrusted)", s.Describe(), CertKey, KeyKey)
	}
	return certPEM, keyPEM, true, nil
}

// Create creates the Secret; it wraps ca.ErrRootExists when it exists.
func (s *Store) Create(certPEM, keyPEM []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_, err := s.client.CoreV1().Secrets(s.namespace).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: s.name, Namespace: s.namespace,
			Labels: map[string]string{"app": "weftd", "app.kubernetes.io/part-of": "weft"}},
		Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{CertKey: certPEM, KeyKey: keyPEM},
	}, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("%s: %w", s.Describe(), ca.ErrRootExists)
	}
	return err
}

// TokenKey returns the join-token key kept in the Secret (which Create
// made), adding a new one on first use; a replica that loses the race to
// add it reads the winner's. So a token from any replica works on all.
func (s *Store) TokenKey() ([]byte, error) {
	for range 5 {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		sec, err := s.client.CoreV1().Secrets(s.namespace).Get(ctx, s.name, metav1.GetOptions{})
		cancel()
		if err != nil {
			return nil, fmt.Errorf("join token key from %s: %w", s.Describe(), err)
		}
		if key := sec.Data[TokenKeyKey]; len(key) >= tokenKeySize {
			return key, nil
		}
		key := make([]byte, tokenKeySize)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		sec = sec.DeepCopy()
		if sec.Data == nil {
			sec.Data = map[string][]byte{}
		}
		sec.Data[TokenKeyKey] = key
		ctx, cancel = context.WithTimeout(context.Background(), timeout)
		_, err = s.client.CoreV1().Secrets(s.namespace).Update(ctx, sec, metav1.UpdateOptions{})
		cancel()
		switch {
		case err == nil:
			return key, nil
		case apierrors.IsConflict(err):
			continue // another replica added one: read it
		default:
			return nil, fmt.Errorf("join token key into %s: %w", s.Describe(), err)
		}
	}
	return nil, fmt.Errorf("join token key in %s: the Secret kept changing", s.Describe())
}
