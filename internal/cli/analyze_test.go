package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/weft-mesh/weft/internal/config"
	"github.com/weft-mesh/weft/internal/controlplane/api"
	"github.com/weft-mesh/weft/internal/controlplane/authz"
	"github.com/weft-mesh/weft/internal/controlplane/store"
)

const analyzeRegistry = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews}
spec:
  hosts: [reviews.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{name: http, number: 9080, protocol: HTTP}]
  workloadSelector: {labels: {app: reviews}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v1-1}
spec: {address: 127.0.1.3, labels: {app: reviews, version: v1}}
`

const analyzeVS = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route: [{destination: {host: HOST}}]
`

func vsTo(host string) string { return strings.Replace(analyzeVS, "HOST", host, 1) }

// runCLI runs weft with args and returns its exit code, stdout and stderr.
func runAnalyzeCLI(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := RunEnv(context.Background(), &Env{Args: args, Stdout: &out, Stderr: &errOut,
		Getenv: func(k string) string { return env[k] }})
	return code, out.String(), errOut.String()
}

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestAnalyzeFiles(t *testing.T) {
	typo := `Error [IST0101] (VirtualService default/reviews) Referenced host not found: "reviewz"` + "\n"
	tests := []struct {
		name      string
		files     map[string]string
		args      []string // after -f DIR
		code      int
		stdout    string
		stderrHas string
	}{
		{"clean", map[string]string{"registry.yaml": analyzeRegistry, "mesh/vs.yml": vsTo("reviews")}, nil,
			0, "", "✔ No validation issues found when analyzing namespace: default.\n"},
		{"typo in a subdirectory", map[string]string{"registry.yaml": analyzeRegistry, "mesh/vs.yaml": vsTo("reviewz")}, nil,
			1, typo, "weft analyze: Analyzers found issues when analyzing namespace: default."},
		{"other namespaces are not reported", map[string]string{"vs.yaml": strings.Replace(vsTo("reviewz"), "{name: reviews}", "{name: reviews, namespace: prod}", 1)}, nil,
			0, "", "✔ No validation issues found when analyzing namespace: default."},
		{"all namespaces", map[string]string{"vs.yaml": strings.Replace(vsTo("reviewz"), "{name: reviews}", "{name: reviews, namespace: prod}", 1)}, []string{"-A"},
			1, `Error [IST0101] (VirtualService prod/reviews) Referenced host not found: "reviewz"` + "\n", "when analyzing all namespaces."},
		{"warnings only exit 0", map[string]string{"registry.yaml": analyzeRegistry, "vs.yaml": strings.Replace(vsTo("reviews"), "  - route:", "  - retries: {attempts: 2, retryRemoteLocalities: true}\n    route:", 1)}, nil,
			0, "Warning [WEFT0001] (VirtualService default/reviews) spec.http[0].retries.retryRemoteLocalities: not implemented yet; ignored\n", ""},
		{"a bad document is reported, the others analyzed", map[string]string{"all.yaml": analyzeRegistry + "---\n" + vsTo("reviewz") + "---\n" + strings.Replace(vsTo("reviews"), "host: reviews}", "hosst: reviews}", 1)}, nil,
			1, "", "Analyzers found issues"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeFiles(t, tt.files)
			code, out, errOut := runAnalyzeCLI(t, nil, append([]string{"analyze", "-f", dir}, tt.args...)...)
			if code != tt.code {
				t.Errorf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.code, out, errOut)
			}
			if tt.stdout != "" && out != tt.stdout || tt.stdout == "" && tt.code == 0 && out != "" {
				t.Errorf("stdout:\n%s\nwant:\n%s", out, tt.stdout)
			}
			if !strings.Contains(errOut, tt.stderrHas) {
				t.Errorf("stderr %q does not contain %q", errOut, tt.stderrHas)
			}
		})
	}
}

func TestAnalyzeBadDocument(t *testing.T) {
	dir := writeFiles(t, map[string]string{"all.yaml": analyzeRegistry + "---\n" + vsTo("reviewz") + "---\n" +
		strings.Replace(strings.Replace(vsTo("reviews"), "{name: reviews}", "{name: other}", 1), "host: reviews}", "hosst: reviews}", 1)})
	code, out, _ := runAnalyzeCLI(t, nil, "analyze", "-f", dir)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 1 || len(lines) != 2 {
		t.Fatalf("exit %d, want 1 and 2 messages; got:\n%s", code, out)
	}
	if !strings.HasPrefix(lines[0], `Error [IST0101] (VirtualService default/reviews) Referenced host not found: "reviewz"`) ||
		!strings.HasPrefix(lines[1], "Error [IST0106] (VirtualService default/other) Schema validation error: ") ||
		!strings.Contains(lines[1], "hosst") {
		t.Errorf("messages:\n%s", out)
	}
}

// liveControlPlane serves the API over a store holding yaml.
func liveControlPlane(t *testing.T, yaml string) map[string]string {
	t.Helper()
	st, err := store.New(store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	objs, err := config.Parse("live.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Apply(objs); err != nil {
		t.Fatal(err)
	}
	const admin = "weft-admin.analyze-test"
	srv := httptest.NewServer(api.NewHandler(api.Options{Store: st, Authorizer: authz.New(authz.Options{AdminToken: admin})}))
	t.Cleanup(srv.Close)
	return map[string]string{envControlPlane: srv.URL, envToken: admin}
}

func TestAnalyzeLive(t *testing.T) {
	env := liveControlPlane(t, analyzeRegistry+"---\n"+vsTo("reviewz"))
	code, out, _ := runAnalyzeCLI(t, env, "analyze")
	if code != 1 || !strings.Contains(out, `Referenced host not found: "reviewz"`) {
		t.Errorf("live: exit %d, stdout:\n%s", code, out)
	}
	// A file replaces the live object of the same kind, namespace and name.
	dir := writeFiles(t, map[string]string{"vs.yaml": vsTo("reviews")})
	code, out, errOut := runAnalyzeCLI(t, env, "analyze", "--live", "-f", dir)
	if code != 0 || out != "" || !strings.Contains(errOut, "No validation issues found") {
		t.Errorf("live + fixed file: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	// Without --live, -f analyzes the files alone: no registry, no host.
	code, out, _ = runAnalyzeCLI(t, env, "analyze", "-f", dir, "-o", "json")
	var msgs []struct{ Code, Level, Message, Origin string }
	if err := json.Unmarshal([]byte(out), &msgs); err != nil {
		t.Fatalf("-o json: %v\n%s", err, out)
	}
	if code != 1 || len(msgs) != 1 || msgs[0].Code != "IST0101" || msgs[0].Level != "Error" ||
		msgs[0].Origin != "VirtualService default/reviews" || msgs[0].Message != `Referenced host not found: "reviews"` {
		t.Errorf("files only, json: exit %d, %+v", code, msgs)
	}
}

func TestApplyPrintsWarnings(t *testing.T) {
	env := liveControlPlane(t, analyzeRegistry)
	dir := writeFiles(t, map[string]string{"vs.yaml": strings.Replace(vsTo("reviews"), "host: reviews}", "host: reviews, subset: v1}", 1)})
	code, out, errOut := runAnalyzeCLI(t, env, "apply", "-f", filepath.Join(dir, "vs.yaml"))
	if code != 0 || out != "virtualservice.networking.istio.io/reviews created\n" {
		t.Errorf("apply: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if want := `Error [IST0101] (VirtualService default/reviews) Referenced host+subset in destinationrule not found: "reviews+v1"` + "\n"; errOut != want {
		t.Errorf("stderr %q, want %q", errOut, want)
	}
	// A typo in the host of a known service is refused.
	dir = writeFiles(t, map[string]string{"vs.yaml": vsTo("reviewz")})
	code, _, errOut = runAnalyzeCLI(t, env, "apply", "-f", filepath.Join(dir, "vs.yaml"))
	if code != 1 || !strings.Contains(errOut, `Referenced host not found: "reviewz"`) {
		t.Errorf("apply of a typo: exit %d, stderr %q", code, errOut)
	}
}
