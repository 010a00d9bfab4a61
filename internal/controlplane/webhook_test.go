package controlplane

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/weft-mesh/weft/internal/controlplane/ca"
	"github.com/weft-mesh/weft/internal/kube/inject"
	"github.com/weft-mesh/weft/internal/kube/webhook"
)

// TestWebhook runs the control plane with --webhook-address: the API
// server's AdmissionReview, over HTTPS to weftd.weft-system.svc checked
// against the mesh CA, gets a patch, and the CA bundle of the
// MutatingWebhookConfiguration becomes the mesh CA's root.
func TestWebhook(t *testing.T) {
	dataDir := t.TempDir()
	client := fake.NewClientset(
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "bookinfo", Labels: map[string]string{inject.NamespaceInjectionLabel: "enabled"}}},
		&admissionregv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: webhook.ConfigurationName},
			Webhooks: []admissionregv1.MutatingWebhook{{Name: "sidecar-injector.weft.io"}}},
	)
	addr := make(chan net.Addr, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{DataDir: dataDir, XDSAddress: "off", SecureXDSAddress: "off", HTTPAddress: "127.0.0.1:0",
			ConsoleAddress: "off", OTLPGRPCAddress: "off", OTLPHTTPAddress: "off",
			Webhook: &WebhookOptions{Address: "127.0.0.1:0", Settings: inject.DefaultSettings("test"), Client: client,
				Ready: func(a net.Addr) { addr <- a }}})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	var url string
	select {
	case a := <-addr:
		url = "https://" + a.String() + webhook.Path
	case err := <-done:
		t.Fatalf("Run: %v", err)
	}
	root, err := os.ReadFile(filepath.Join(dataDir, "ca", ca.RootCertFile))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(root)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "weftd.weft-system.svc", MinVersion: tls.VersionTLS12}}
	defer tr.CloseIdleConnections()
	body, err := os.ReadFile(filepath.Join("..", "kube", "webhook", "testdata", "review-pod.json"))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var review admissionv1.AdmissionReview
	if err := json.NewDecoder(resp.Body).Decode(&review); err != nil {
		t.Fatal(err)
	}
	if r := review.Response; r == nil || !r.Allowed || !bytes.Contains(r.Patch, []byte(`"name":"istio-proxy"`)) {
		t.Fatalf("response %+v, want the sidecar patched in", r)
	}

	deadline := time.Now().Add(10 * time.Second)
	for {
		cfg, err := client.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(t.Context(), webhook.ConfigurationName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(cfg.Webhooks[0].ClientConfig.CABundle, root) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("CA bundle %q, want the mesh root", cfg.Webhooks[0].ClientConfig.CABundle)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
