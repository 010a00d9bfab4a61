package archtest

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/weft-mesh/weft/"

type pkg struct {
	ImportPath string
	Doc        string
	Deps       []string
	Name       string
}

func listPackages(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", module+"...")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(out)
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("go list: %v", err)
	}
	return pkgs
}

// TestDependencyRules keeps the control plane and the proxy apart: they share
// only xDS protos and small packages such as internal/config.
func TestDependencyRules(t *testing.T) {
	rules := []struct {
		from, mustNot string
	}{
		{module + "internal/controlplane", module + "internal/proxy"},
		{module + "internal/proxy", module + "internal/controlplane"},
		{module + "internal/config", module + "internal/controlplane"},
		{module + "internal/config", module + "internal/proxy"},
		{module + "internal/demo/bookinfo", module + "internal/proxy"},
		{module + "internal/demo/bookinfo", module + "internal/controlplane"},
	}
	for _, p := range listPackages(t) {
		for _, r := range rules {
			if !strings.HasPrefix(p.ImportPath, r.from) {
				continue
			}
			for _, d := range p.Deps {
				if strings.HasPrefix(d, r.mustNot) {
					t.Errorf("%s depends on %s (rule: %s must not import %s)", p.ImportPath, d, r.from, r.mustNot)
				}
			}
		}
	}
}

// TestPackageDocs requires a doc comment on every package.
func TestPackageDocs(t *testing.T) {
	for _, p := range listPackages(t) {
		if p.Doc == "" {
			t.Errorf("package %s has no doc comment", p.ImportPath)
		}
		if bad := map[string]bool{"util": true, "common": true, "utils": true, "misc": true}; bad[p.Name] {
			t.Errorf("package %s: name %q says nothing of what it is", p.ImportPath, p.Name)
		}
	}
}

// TestProxyBinaryIsDataPlaneOnly keeps weft-proxy, the binary every sidecar
// and gateway runs, free of what only the CLI and the control plane use:
// each such package would add its pages and its init work to every pod.
func TestProxyBinaryIsDataPlaneOnly(t *testing.T) {
	deps := goListDeps(t, module+"cmd/weft-proxy")
	forbidden := []string{
		module + "internal/controlplane",
		module + "internal/kube",
		module + "internal/cli",
		module + "internal/demo",
		module + "internal/analyze",
		module + "internal/config", // Istio's YAML and its protos: the proxy reads xDS (and xdsmeta)
		module + "web",
		"k8s.io",
		"sigs.k8s.io",
		"istio.io/api/networking", // the CA's protocol (istio.io/api/security/v1alpha1) is the proxy's
		"istio.io/client-go",
		"github.com/envoyproxy/go-control-plane/pkg", // the server side: caches, snapshots
		"helm.sh",
		// grpc-go's xDS client and server: only proxyless apps (weft
		// temperature --proxyless) link them; the sidecar speaks its own xDS.
		"google.golang.org/grpc/xds",
		"google.golang.org/grpc/credentials/xds",
	}
	for _, d := range deps {
		for _, f := range forbidden {
			if d == f || strings.HasPrefix(d, f+"/") {
				t.Errorf("cmd/weft-proxy depends on %s (forbidden: %s)", d, f)
			}
		}
	}
}

// TestProxyKnowsWhatTheControlPlaneSends checks weft-proxy links the proto
// package of every Envoy extension the control plane's translation puts in
// a typed config: its config_dump prints them, which needs their types.
func TestProxyKnowsWhatTheControlPlaneSends(t *testing.T) {
	proxy := map[string]bool{}
	for _, d := range goListDeps(t, module+"cmd/weft-proxy") {
		proxy[d] = true
	}
	const envoy = "github.com/envoyproxy/go-control-plane/envoy/"
	for _, d := range goListDeps(t, module+"internal/controlplane/translate") {
		if strings.HasPrefix(d, envoy) && !strings.HasPrefix(d, envoy+"service/") && !proxy[d] {
			t.Errorf("the control plane sends types of %s, which weft-proxy does not link (import it in internal/proxy/admin)", d)
		}
	}
}

// goListDeps is `go list -deps pkg`: pkg and every package it links.
func goListDeps(t *testing.T, pkg string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", pkg).Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	deps := strings.Fields(string(out))
	if len(deps) == 0 {
		t.Fatalf("go list -deps %s printed no packages", pkg)
	}
	return deps
}
