package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/weft-mesh/weft/internal/kube/chart"
	"github.com/weft-mesh/weft/manifests"
)

func runInstallCLI(t *testing.T, env map[string]string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = RunEnv(context.Background(), &Env{Args: args, Stdout: &out, Stderr: &errOut, Getenv: func(k string) string { return env[k] }})
	return out.String(), errOut.String(), code
}

// TestInstallDryRun: --dry-run prints exactly the chart's rendering, the
// one checked by internal/kube/chart's golden files.
func TestInstallDryRun(t *testing.T) {
	for _, profile := range []string{"default", "demo", "minimal"} {
		out, stderr, code := runInstallCLI(t, nil, "install", "--dry-run", "--profile", profile)
		if code != 0 {
			t.Fatalf("profile %s: exit %d: %s", profile, code, stderr)
		}
		want, err := os.ReadFile(filepath.Join("..", "kube", "chart", "testdata", profile+".golden.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if out != string(want) {
			t.Errorf("profile %s: weft install --dry-run differs from the chart's golden rendering", profile)
		}
	}
	out, _, _ := runInstallCLI(t, nil, "install", "--dry-run", "--set", "controlPlane.replicas=3")
	if !strings.Contains(out, "replicas: 3\n") {
		t.Error("--set controlPlane.replicas=3 not rendered")
	}
}

func TestInstallErrors(t *testing.T) {
	kubeconfig := filepath.Join(t.TempDir(), "config")
	// An API server address nothing listens on (port 1 of loopback).
	os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`), 0o600)
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"unknown profile", nil, []string{"install", "--profile", "tiny", "--dry-run"}, `unknown profile "tiny": want one of default, demo, minimal`},
		{"bad set", nil, []string{"install", "--set", "controlPlane.replcas=2", "--dry-run"}, "the chart has no value controlPlane.replcas"},
		{"bad set type", nil, []string{"install", "--set", "controlPlane.replicas=two", "--dry-run"}, "want a number"},
		{"unreachable", nil, []string{"install", "--kubeconfig", kubeconfig}, "cannot reach the Kubernetes API server at https://127.0.0.1:1"},
		{"unreachable from $KUBECONFIG", map[string]string{"KUBECONFIG": kubeconfig}, []string{"uninstall"}, "cannot reach the Kubernetes API server at https://127.0.0.1:1"},
		{"no kubeconfig", nil, []string{"install", "--kubeconfig", filepath.Join(t.TempDir(), "missing")}, "Kubernetes client config"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, code := runInstallCLI(t, tt.env, tt.args...)
			if code != 1 || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want 1 and %q", code, stderr, tt.want)
			}
		})
	}
}

// TestChartVersion keeps the chart's appVersion, the default image tag,
// equal to the release weft version prints.
func TestChartVersion(t *testing.T) {
	c, err := chart.Load(manifests.Chart, manifests.ChartDir)
	if err != nil {
		t.Fatal(err)
	}
	if c.Metadata().AppVersion != Version {
		t.Errorf("Chart.yaml appVersion %s, want weft's version %s", c.Metadata().AppVersion, Version)
	}
}
