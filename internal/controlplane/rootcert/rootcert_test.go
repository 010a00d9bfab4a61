package rootcert

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

const bundle = "-----BEGIN CERTIFICATE-----\nroot\n-----END CERTIFICATE-----\n"

func namespace(name string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
}

// waitFor polls the ConfigMap of ns until it holds want, with a deadline.
func waitFor(t *testing.T, client *fake.Clientset, ns, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		cm, err := client.CoreV1().ConfigMaps(ns).Get(context.Background(), ConfigMapName, metav1.GetOptions{})
		if err == nil && cm.Data[DataKey] == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("namespace %s: ConfigMap %s %v (%v), want %s=%q", ns, ConfigMapName, cm, err, DataKey, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestPublishesToEveryNamespace(t *testing.T) {
	stale := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: ConfigMapName, Namespace: "bookinfo"}, Data: map[string]string{DataKey: "old root"}}
	client := fake.NewClientset(namespace("default"), namespace("bookinfo"), stale)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		New(Options{Client: client, Bundle: func() []byte { return []byte(bundle) }}).Run(ctx)
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })
	waitFor(t, client, "default", bundle)
	waitFor(t, client, "bookinfo", bundle) // the stale one is updated
	// A namespace created later gets it too.
	if _, err := client.CoreV1().Namespaces().Create(ctx, namespace("later"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, client, "later", bundle)
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
