package analyze

import (
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/weft-mesh/weft/internal/config"
)

// TestBookinfoSamples analyzes every file of Istio's Bookinfo samples
// applied over Bookinfo as weft demo runs it (its registry,
// destination-rule-all.yaml and bookinfo-gateway.yaml), reporting the
// messages about the file's own objects. They are clean but for what
// istioctl analyze says of them too.
func TestBookinfoSamples(t *testing.T) {
	noPods := func(dr, subset string) string {
		return "Error [IST0173] (DestinationRule default/" + dr + ") The Subset " + subset +
			" defined in the DestinationRule does not select any pods. Which may lead to 503 UH (NoHealthyUpstream)."
	}
	// The demo runs no details v2 and no ratings v2.
	drAll := []string{noPods("details", "v2"), noPods("ratings", "v2"), noPods("ratings", "v2-mysql"), noPods("ratings", "v2-mysql-vm")}
	want := map[string][]string{
		"certmanager-gateway.yaml":       {`Error [IST0101] (VirtualService istio-system/cert-manager) Referenced host not found: "cert-manager-resolver"`},
		"destination-rule-all-mtls.yaml": drAll,
		"destination-rule-all.yaml":      drAll,
		// Two rules without matches: Istio's own sample, Istio's own warning.
		"fault-injection-details-v1.yaml": {`Warning [IST0130] (VirtualService default/details) VirtualService rule #1 not used (only the last rule can have no matches).`},
	}
	base := append(bookinfo(t), parseFile(t, filepath.Join(samples, "destination-rule-all.yaml"))...)
	base = append(base, parseFile(t, filepath.Join(samples, "bookinfo-gateway.yaml"))...)
	files, err := filepath.Glob(filepath.Join(samples, "*.yaml"))
	if err != nil || len(files) < 20 {
		t.Fatalf("Bookinfo samples in %s: %d files, %v", samples, len(files), err)
	}
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			objs := parseFile(t, f)
			own := map[config.Key]bool{}
			for _, o := range objs {
				own[o.Key()] = true
			}
			for _, o := range base {
				if !own[o.Key()] {
					objs = append(objs, o)
				}
			}
			got := []string{}
			for _, m := range Analyze(objs) {
				if own[m.Resource] {
					got = append(got, m.String())
					if m.Blocks() {
						t.Errorf("blocks an apply: %s", m)
					}
				}
			}
			w := want[name]
			if w == nil {
				w = []string{}
			}
			if diff := cmp.Diff(w, got); diff != "" {
				t.Errorf("messages (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBlocks(t *testing.T) {
	objs := append(bookinfo(t), parseYAML(t, `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route: [{destination: {host: reviewz}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: notyet}
spec:
  hosts: [notyet]
  http:
  - route: [{destination: {host: notyet, subset: v1}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ingress}
spec:
  hosts: ["*"]
  gateways: [missing]
  http:
  - route: [{destination: {host: productpagez}}]
`)...)
	got := map[string]bool{}
	for _, m := range Analyze(objs) {
		got[m.String()] = m.Blocks()
	}
	want := map[string]bool{
		`Error [IST0101] (VirtualService default/reviews) Referenced host not found: "reviewz"`:                            true,
		`Error [IST0101] (VirtualService default/notyet) Referenced host not found: "notyet"`:                              false,
		`Error [IST0101] (VirtualService default/notyet) Referenced host+subset in destinationrule not found: "notyet+v1"`: false,
		`Error [IST0101] (VirtualService default/ingress) Referenced gateway not found: "missing"`:                         false,
		`Error [IST0101] (VirtualService default/ingress) Referenced host not found: "productpagez"`:                       false,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Blocks (-want +got):\n%s", diff)
	}
}
