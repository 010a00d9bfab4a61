package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
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
	out, errs, code := runCLI(t, "", "", "kube-inject", "-f", in, "--image", "registry.local/weft:dev")
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
	if out, errs, code := runCLI(t, "", "", "kube-inject", "-f", in, "-o", outFile, "--image", "registry.local/weft:dev"); code != 0 || out != "" {
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
		out, errs, code := runCLI(t, "", "", tt.args...)
		if code == 0 || !strings.Contains(errs, tt.want) || out != "" {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want a failure saying %q", tt.args, code, out, errs, tt.want)
		}
	}
}
