package translate

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protojson"
	"sigs.k8s.io/yaml"

	"github.com/weft-mesh/weft/internal/config"
	"github.com/weft-mesh/weft/internal/controlplane/registry"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// samples are the repository's Bookinfo samples (Istio's file names).
const samples = "../../../samples/bookinfo/networking/"

func load(t *testing.T, path string) []*config.Object {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := config.ParseWith(path, data, config.ParseOptions{SkipForeign: true})
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func TestGolden(t *testing.T) {
	productpage := Proxy{ID: "sidecar~127.0.1.1~productpage-v1-1.default~default.svc.cluster.local", Type: ProxySidecar,
		Name: "productpage-v1-1", Namespace: "default", IP: "127.0.1.1", Labels: map[string]string{"app": "productpage", "version": "v1"}}
	gateway := Proxy{ID: "router~127.0.0.1~istio-ingressgateway.istio-system~istio-system.svc.cluster.local", Type: ProxyRouter,
		Name: "istio-ingressgateway", Namespace: "istio-system", IP: "127.0.0.1", Labels: map[string]string{"istio": "ingressgateway"}}
	cases := []struct {
		name  string
		proxy Proxy
		files []string
	}{
		{"productpage-plain", productpage, nil},
		{"productpage-all-v1", productpage, []string{"destination-rule-all.yaml", "virtual-service-all-v1.yaml"}},
		{"productpage-test-v2", productpage, []string{"destination-rule-all.yaml", "virtual-service-reviews-test-v2.yaml"}},
		{"productpage-50-v3", productpage, []string{"destination-rule-all.yaml", "virtual-service-reviews-50-v3.yaml"}},
		{"gateway-bookinfo", gateway, []string{"bookinfo-gateway.yaml"}},
		{"productpage-ratings-abort", productpage, []string{"destination-rule-all.yaml", "virtual-service-ratings-test-abort.yaml"}},
		{"productpage-ratings-delay", productpage, []string{"destination-rule-all.yaml", "virtual-service-ratings-test-delay.yaml"}},
		{"productpage-tcp-echo", productpage, []string{"testdata/tcp-echo-registry.yaml", "../../tcp-echo/tcp-echo-all-v1.yaml"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			objs := load(t, "testdata/bookinfo-registry.yaml")
			for _, f := range tc.files {
				if strings.HasPrefix(f, "testdata/") {
					objs = append(objs, load(t, f)...)
					continue
				}
				objs = append(objs, load(t, samples+f)...)
			}
			out, err := Build(Input{Config: objs, Registry: registry.Build(objs), Proxy: tc.proxy})
			if err != nil {
				t.Fatal(err)
			}
			snap, err := cachev3.NewSnapshot("1", map[resourcev3.Type][]types.Resource{
				resourcev3.ListenerType: out.Listeners, resourcev3.RouteType: out.Routes,
				resourcev3.ClusterType: out.Clusters, resourcev3.EndpointType: out.Endpoints,
			})
			if err != nil {
				t.Fatal(err)
			}
			if err := snap.Consistent(); err != nil {
				t.Fatalf("snapshot not consistent: %v", err)
			}
			got := render(t, out)
			golden := filepath.Join("testdata", tc.name+".golden.yaml")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update)", err)
			}
			if d := cmp.Diff(string(want), string(got)); d != "" {
				t.Errorf("%s differs (-want +got):\n%s", golden, d)
			}
		})
	}
}

func render(t *testing.T, out *Output) []byte {
	t.Helper()
	var b strings.Builder
	for _, set := range []struct {
		name string
		rs   []types.Resource
	}{{"listeners", out.Listeners}, {"routes", out.Routes}, {"clusters", out.Clusters}, {"endpoints", out.Endpoints}} {
		b.WriteString("# " + set.name + "\n")
		for _, r := range set.rs {
			js, err := protojson.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			y, err := yaml.JSONToYAML(js)
			if err != nil {
				t.Fatal(err)
			}
			b.WriteString("---\n")
			b.Write(y)
		}
	}
	for _, w := range out.Warnings {
		b.WriteString("# warning: " + w + "\n")
	}
	return []byte(b.String())
}

func TestDomains(t *testing.T) {
	got := domains("reviews.default.svc.cluster.local", 9080, "default", nil)
	want := []string{"reviews.default.svc.cluster.local", "reviews.default.svc.cluster.local:9080", "reviews", "reviews:9080",
		"reviews.default", "reviews.default:9080", "reviews.default.svc", "reviews.default.svc:9080"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("same namespace (-want +got):\n%s", d)
	}
	if got := domains("reviews.default.svc.cluster.local", 9080, "prod", nil); contains(got, "reviews") {
		t.Errorf("short name offered to another namespace: %v", got)
	}
	got = domains("ext.example.com", 443, "default", []string{"240.240.0.1", "10.0.0.0/8", "fd00::1"})
	want = []string{"ext.example.com", "ext.example.com:443", "240.240.0.1", "240.240.0.1:443", "[fd00::1]", "[fd00::1]:443"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("VIPs (-want +got):\n%s", d)
	}
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}
