package kube

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// loopbackIP returns a random 127.R.240-249.N address, for a control plane
// the API server calls back (the webhook) or that other processes reach.
func loopbackIP() string {
	return fmt.Sprintf("127.%d.%d.%d", 1+rand.IntN(254), 240+rand.IntN(10), 2+rand.IntN(250))
}

// startControlPlane runs `weft control-plane --kubeconfig` (outside the
// cluster) with its API and xDS on ip, its state in namespace ns, and
// extra flags; it waits until its API answers.
func startControlPlane(t *testing.T, ip, ns string, env []string, extra ...string) (*proc, string) {
	t.Helper()
	return startControlPlaneAs(t, api.Kubeconfig, ip, ns, env, extra...)
}

// startControlPlaneAs is startControlPlane with the user of kubeconfig.
func startControlPlaneAs(t *testing.T, kubeconfig, ip, ns string, env []string, extra ...string) (*proc, string) {
	t.Helper()
	httpAddr := freeAddr(t, ip)
	args := append([]string{"control-plane", "--kubeconfig", kubeconfig, "--kube-namespace", ns,
		"--xds-address", freeAddr(t, ip), "--http-address", httpAddr, "--secure-xds-address", freeAddr(t, ip),
		"--console-address", "off", "--otlp-grpc-address", "off", "--otlp-http-address", "off",
		"--data-dir", t.TempDir(), "--log-level", "debug"}, extra...)
	cmd := exec.Command(weftBin, args...)
	cmd.Env = append(os.Environ(), env...)
	p := startCmd(t, cmd)
	eventually(t, time.Minute, func() error {
		select {
		case <-p.done:
			return fmt.Errorf("weft control-plane exited:\n%s", tail(p.out.String(), 3000))
		default:
		}
		out, err := exec.Command(weftBin, "proxy-status", "--control-plane", "http://"+httpAddr).CombinedOutput()
		if err != nil {
			return fmt.Errorf("weft proxy-status: %v: %s", err, out)
		}
		return nil
	})
	return p, httpAddr
}

// TestInjectionWebhook: the control plane runs outside the cluster, the
// webhook is registered by URL (weft install --set injector.url), and the
// API server itself calls it: a pod of a labelled namespace comes back with
// the sidecar, one of another namespace without. Not parallel: it installs
// the cluster-wide webhook configuration.
func TestInjectionWebhook(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ip := loopbackIP()
	hookAddr := freeAddr(t, ip)
	url := "https://" + hookAddr + "/inject"
	mustWeft(t, "install", "--set", "injector.url="+url)
	t.Cleanup(func() {
		mustWeft(t, "uninstall")
		finalizeNamespace(context.Background(), t, "weft-system")
	})
	// The control plane runs as the chart's ServiceAccount weftd: its
	// ClusterRole and Role are all it may use.
	weftd := api.ServiceAccountKubeconfig(t, "weft-system", "weftd")
	cp, _ := startControlPlaneAs(t, weftd, ip, "weft-system", nil, "--webhook-address", hookAddr, "--webhook-url", url)

	cs := api.Clientset(t)
	// The control plane writes its CA into both webhooks' caBundle.
	eventually(t, 30*time.Second, func() error {
		cfg, err := cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, "weft-sidecar-injector", metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, h := range cfg.Webhooks {
			if len(h.ClientConfig.CABundle) == 0 || h.ClientConfig.URL == nil || *h.ClientConfig.URL != url {
				return fmt.Errorf("webhook %s: url %v, caBundle %d bytes", h.Name, h.ClientConfig.URL, len(h.ClientConfig.CABundle))
			}
		}
		return nil
	})

	injected := api.Namespace(t, "injected", map[string]string{"istio-injection": "enabled"})
	plain := api.Namespace(t, "plain", nil)
	pod := func(name string, labels map[string]string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:1",
				Ports: []corev1.ContainerPort{{ContainerPort: 9080}}}}}}
	}
	tests := []struct {
		name, ns string
		labels   map[string]string
		want     bool
	}{
		{"labelled namespace", injected, map[string]string{"app": "reviews"}, true},
		{"labelled namespace, pod opts out", injected, map[string]string{"app": "reviews", "sidecar.istio.io/inject": "false"}, false},
		{"namespace without the label", plain, map[string]string{"app": "reviews"}, false},
		{"pod opts in", plain, map[string]string{"app": "reviews", "sidecar.istio.io/inject": "true"}, true},
	}
	for i, tt := range tests {
		got, err := cs.CoreV1().Pods(tt.ns).Create(ctx, pod(fmt.Sprintf("reviews-%d", i), tt.labels), metav1.CreateOptions{})
		if err != nil {
			t.Errorf("%s: creating the pod: %v", tt.name, err)
			continue
		}
		if has := hasSidecar(got); has != tt.want {
			t.Errorf("%s: sidecar %v, want %v; containers %v, init %v", tt.name, has, tt.want, names(got.Spec.Containers), names(got.Spec.InitContainers))
		}
		if tt.want && got.Annotations["sidecar.istio.io/status"] == "" {
			t.Errorf("%s: no sidecar.istio.io/status annotation: %v", tt.name, got.Annotations)
		}
	}

	// What the chart's RBAC does not allow shows in the log as forbidden.
	if out := cp.out.String(); strings.Contains(out, "forbidden") {
		t.Errorf("the control plane as ServiceAccount weftd was refused something:\n%s", grep(out, "forbidden"))
	}

	// weft kube-inject's output is accepted by the API server's validation
	// (a server-side dry run creates nothing).
	deploy := filepath.Join(t.TempDir(), "deploy.yaml")
	if err := os.WriteFile(deploy, []byte(kubeInjectDeployment), 0o644); err != nil {
		t.Fatal(err)
	}
	out := mustWeft(t, "kube-inject", "-f", deploy)
	var d appsv1.Deployment
	if err := yaml.UnmarshalStrict([]byte(out), &d); err != nil {
		t.Fatalf("weft kube-inject output: %v\n%s", err, out)
	}
	if c := names(d.Spec.Template.Spec.Containers); !strings.Contains(c, "istio-proxy") {
		t.Fatalf("weft kube-inject: containers %s", c)
	}
	if _, err := cs.AppsV1().Deployments(plain).Create(ctx, &d, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
		t.Errorf("the API server refuses weft kube-inject's Deployment: %v", err)
	}
	if _, err := cs.AppsV1().Deployments(plain).Get(ctx, d.Name, metav1.GetOptions{}); err == nil {
		t.Errorf("the dry run created Deployment %s", d.Name)
	}
}

const kubeInjectDeployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: ratings-v1
  labels: {app: ratings, version: v1}
spec:
  replicas: 1
  selector:
    matchLabels: {app: ratings, version: v1}
  template:
    metadata:
      labels: {app: ratings, version: v1}
      annotations:
        proxy.istio.io/config: '{holdApplicationUntilProxyStarts: true}'
    spec:
      serviceAccountName: default
      containers:
      - name: ratings
        image: docker.io/istio/examples-bookinfo-ratings-v1:1.20.3
        ports: [{containerPort: 9080}]
`

func hasSidecar(p *corev1.Pod) bool {
	return strings.Contains(names(p.Spec.Containers), "istio-proxy") && strings.Contains(names(p.Spec.InitContainers), "istio-init")
}

func names(cs []corev1.Container) string {
	var b bytes.Buffer
	for _, c := range cs {
		b.WriteString(c.Name + " ")
	}
	return strings.TrimSpace(b.String())
}
