package webhook

import (
	"bytes"
	"context"
	"testing"
	"time"

	admissionregv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func webhookConfig(bundles ...string) *admissionregv1.MutatingWebhookConfiguration {
	cfg := &admissionregv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: ConfigurationName}}
	path := Path
	for _, b := range bundles {
		cfg.Webhooks = append(cfg.Webhooks, admissionregv1.MutatingWebhook{
			Name: "sidecar-injector.weft.io",
			ClientConfig: admissionregv1.WebhookClientConfig{
				Service:  &admissionregv1.ServiceReference{Namespace: "weft-system", Name: "weftd", Path: &path},
				CABundle: []byte(b),
			},
		})
	}
	return cfg
}

func updates(cs *fake.Clientset) int {
	n := 0
	for _, a := range cs.Actions() {
		if a.GetVerb() == "update" && a.GetResource().Resource == "mutatingwebhookconfigurations" {
			n++
		}
	}
	return n
}

func bundles(t *testing.T, cs *fake.Clientset) []string {
	t.Helper()
	cfg, err := cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(t.Context(), ConfigurationName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, w := range cfg.Webhooks {
		out = append(out, string(w.ClientConfig.CABundle))
	}
	return out
}

const pemBundle = "-----BEGIN CERTIFICATE-----\nroot\n-----END CERTIFICATE-----\n"

func TestCABundleReconcile(t *testing.T) {
	cs := fake.NewClientset(webhookConfig("", "stale"))
	p := &CABundlePatcher{Client: cs, Bundle: func() []byte { return []byte(pemBundle) }}
	if err := p.Reconcile(t.Context()); err != nil {
		t.Fatal(err)
	}
	for i, b := range bundles(t, cs) {
		if b != pemBundle {
			t.Errorf("webhook %d has CA bundle %q", i, b)
		}
	}
	if n := updates(cs); n != 1 {
		t.Errorf("%d updates, want 1", n)
	}
	// Up to date: no write.
	if err := p.Reconcile(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := updates(cs); n != 1 {
		t.Errorf("%d updates after a reconcile with nothing to do, want still 1", n)
	}
	// Not installed yet: nothing to do, no error.
	empty := fake.NewClientset()
	if err := (&CABundlePatcher{Client: empty, Bundle: p.Bundle}).Reconcile(t.Context()); err != nil {
		t.Errorf("configuration absent: %v", err)
	}
}

func TestCABundleRun(t *testing.T) {
	cs := fake.NewClientset()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		(&CABundlePatcher{Client: cs, Bundle: func() []byte { return []byte(pemBundle) }}).Run(ctx, time.Minute)
	}()
	defer func() { cancel(); <-done }()
	api := cs.AdmissionregistrationV1().MutatingWebhookConfigurations()

	// weft install applies the configuration after the control plane started.
	if _, err := api.Create(t.Context(), webhookConfig(""), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitBundle(t, cs, pemBundle)
	// Re-applying the manifest clears the bundle: it is set again.
	if _, err := api.Update(t.Context(), webhookConfig(""), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitBundle(t, cs, pemBundle)
}

func waitBundle(t *testing.T, cs *fake.Clientset, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		cfg, err := cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(t.Context(), ConfigurationName, metav1.GetOptions{})
		if err == nil && len(cfg.Webhooks) == 1 && bytes.Equal(cfg.Webhooks[0].ClientConfig.CABundle, []byte(want)) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("CA bundle not set within 10s: %+v, %v", cfg, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
