package kubeapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Main starts one API server for the test package, stores it in *s, runs
// the tests and stops it; it returns the exit code for os.Exit. If the
// server cannot start, every test of the package fails with the reason.
func Main(m *testing.M, s **Server) int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	srv, err := Start(ctx, "")
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "kubeapi:", err)
		return 1
	}
	*s = srv
	code := m.Run()
	if code != 0 {
		fmt.Fprintf(os.Stderr, "kubeapi: the end of kube-apiserver's log:\n%s\n", srv.Logs(4000))
	}
	srv.Stop()
	return code
}

// Clientset returns a typed client as the admin.
func (s *Server) Clientset(t testing.TB) *kubernetes.Clientset {
	t.Helper()
	cs, err := kubernetes.NewForConfig(s.Config)
	if err != nil {
		t.Fatalf("Kubernetes client: %v", err)
	}
	return cs
}

// Namespace creates a namespace named PREFIX-RANDOM with labels, and its
// default ServiceAccount (no controller-manager makes it), and deletes it
// when the test ends.
func (s *Server) Namespace(t testing.TB, prefix string, labels map[string]string) string {
	t.Helper()
	cs := s.Clientset(t)
	var sfx [3]byte
	_, _ = rand.Read(sfx[:])
	name := strings.ToLower(prefix) + "-" + hex.EncodeToString(sfx[:])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating namespace %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// No namespace controller finalizes it: it stays Terminating,
		// which no other test sees (names are random).
		_ = cs.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{})
	})
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: name}}
	if _, err := cs.CoreV1().ServiceAccounts(name).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("creating %s's default ServiceAccount: %v", name, err)
	}
	return name
}

// UserConfig returns a client config authenticated by a client certificate
// as user in groups. RBAC lets it do nothing until a Role or ClusterRole is
// bound to {kind: User, name: user} (or to one of its groups).
func (s *Server) UserConfig(user string, groups ...string) *rest.Config {
	return s.pki.clientConfig(s.host(), user, groups...)
}

// UserKubeconfig is UserConfig as a kubeconfig file, for a process.
func (s *Server) UserKubeconfig(t testing.TB, user string, groups ...string) string {
	t.Helper()
	path, err := s.writeKubeconfig(user, s.UserConfig(user, groups...))
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// ServiceAccountConfig creates the ServiceAccount namespace/name (if
// missing) and returns a client config with a one-hour token the
// TokenRequest API issued for it (the API server's audience), as a pod's
// projected token. It authenticates as
// system:serviceaccount:NAMESPACE:NAME.
func (s *Server) ServiceAccountConfig(t testing.TB, namespace, name string) *rest.Config {
	t.Helper()
	cs := s.Clientset(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace}}
	if _, err := cs.CoreV1().ServiceAccounts(namespace).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("creating ServiceAccount %s/%s: %v", namespace, name, err)
	}
	hour := int64(3600)
	tr, err := cs.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &hour}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token for ServiceAccount %s/%s: %v", namespace, name, err)
	}
	return &rest.Config{Host: s.host(), BearerToken: tr.Status.Token, TLSClientConfig: rest.TLSClientConfig{CAData: s.pki.caPEM}, QPS: -1}
}

// ServiceAccountKubeconfig is ServiceAccountConfig as a kubeconfig file.
func (s *Server) ServiceAccountKubeconfig(t testing.TB, namespace, name string) string {
	t.Helper()
	path, err := s.writeKubeconfig("sa-"+namespace+"-"+name, s.ServiceAccountConfig(t, namespace, name))
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// CACert returns the PEM of the CA that signed the API server's serving
// certificate and its client certificates.
func (s *Server) CACert() []byte { return s.pki.caPEM }
