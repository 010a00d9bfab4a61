package cli

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/weft-mesh/weft/internal/kube/inject"
)

func TestKubeInject(t *testing.T) {
	in := filepath.Join("..", "kube", "inject", "testdata", "bookinfo.yaml")
	data, err := os.ReadFile(in)
	if err != nil {
		t.Fatal(err)
	}
	s := inject.DefaultSettings(Version)
	s.Image = "registry.local/weft:dev"
	var want bytes.Buffer
	if _, err := inject.Documents(bytes.NewReader(data), &want, s, true); err != nil {
		t.Fatal(err)
	}
	out, errs, code := runCLI(t, "", "kube-inject", "-f", in, "--image", "registry.local/weft:dev")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if out != want.String() {
		t.Errorf("stdout is not the injected stream:\n%s", out)
	}
	if !strings.Contains(out, "image: registry.local/weft:dev") {
		t.Errorf("--image not used:\n%s", out)
	}

	outFile := filepath.Join(t.TempDir(), "injected.yaml")
	if out, errs, code := runCLI(t, "", "kube-inject", "-f", in, "-o", outFile, "--image", "registry.local/weft:dev"); code != 0 || out != "" {
		t.Fatalf("-o: exit %d, stdout %q, stderr %s", code, out, errs)
	}
	if got, _ := os.ReadFile(outFile); string(got) != want.String() {
		t.Errorf("-o file is not the injected stream")
	}
}

func TestKubeInjectErrors(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {replica: 2}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"kube-inject"}, "needs -f FILE"},
		{[]string{"kube-inject", "-f", filepath.Join(t.TempDir(), "missing.yaml")}, "no such file"},
		{[]string{"kube-inject", "-f", bad}, `document 1 (Deployment web): error unmarshaling JSON: while decoding JSON: json: unknown field "replica"`},
		{[]string{"kube-inject", "-f", bad, "--image-pull-policy", "Sometimes"}, "want Always, IfNotPresent or Never"},
	}
	for _, tt := range tests {
		out, errs, code := runCLI(t, "", tt.args...)
		if code == 0 || !strings.Contains(errs, tt.want) || out != "" {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want a failure saying %q", tt.args, code, out, errs, tt.want)
		}
	}
}

func TestProxyReady(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz/ready" || calls.Add(1) < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	url := srv.URL + "/healthz/ready"
	if _, errs, code := runCLI(t, "", "proxy-ready", "--url", url); code == 0 || !strings.Contains(errs, "503 Service Unavailable") {
		t.Errorf("a single check of a proxy not ready: exit %d, %q", code, errs)
	}
	if out, errs, code := runCLI(t, "", "proxy-ready", "--wait", "--url", url, "--period", "10ms"); code != 0 || out != "proxy ready\n" {
		t.Errorf("--wait: exit %d, %q %q", code, out, errs)
	}
	if n := calls.Load(); n != 3 {
		t.Errorf("%d checks, want 3 (ready at the third)", n)
	}
	_, errs, code := runCLI(t, "", "proxy-ready", "--wait", "--url", srv.URL+"/nope", "--period", "10ms", "--timeout", "100ms")
	if code == 0 || !strings.Contains(errs, "proxy not ready after 100ms") {
		t.Errorf("--wait on a proxy never ready: exit %d, %q", code, errs)
	}
}
