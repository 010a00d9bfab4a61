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
