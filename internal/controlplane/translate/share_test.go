package translate

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/weft-mesh/weft/internal/config"
	"github.com/weft-mesh/weft/internal/controlplane/registry"
)

const strictMTLS = `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec: {mtls: {mode: STRICT}}
`

// TestMergeEqualsBuild: a sidecar's shared and own parts, merged, are
// exactly what Build gives, for every kind of config translate knows.
func TestMergeEqualsBuild(t *testing.T) {
	productpage := Proxy{ID: "sidecar~127.0.1.1~productpage-v1-1.default~default.svc.cluster.local", Type: ProxySidecar,
		Name: "productpage-v1-1", Namespace: "default", IP: "127.0.1.1", Labels: map[string]string{"app": "productpage", "version": "v1"}}
	reviews := Proxy{ID: "sidecar~127.0.1.4~reviews-v2-1.default~default.svc.cluster.local", Type: ProxySidecar,
		Name: "reviews-v2-1", Namespace: "default", IP: "127.0.1.4", Labels: map[string]string{"app": "reviews", "version": "v2"},
		MTLS: true, Locality: "us-east/zone-a"}
	cases := []struct {
		name  string
		files []string
		extra string
	}{
		{"plain", nil, ""},
		{"all-v1", []string{"destination-rule-all.yaml", "virtual-service-all-v1.yaml"}, ""},
		{"50-v3", []string{"destination-rule-all-mtls.yaml", "virtual-service-reviews-50-v3.yaml"}, ""},
		{"ratings-abort", []string{"destination-rule-all.yaml", "virtual-service-ratings-test-abort.yaml"}, ""},
		{"authz", nil, authzConfig},
		{"egress", nil, egressConfig},
		{"headers", nil, headersVS},
		{"direct", nil, directVS},
		{"source-labels", nil, sourceVS},
		{"locality", nil, localityConfig},
		{"mirror", nil, mirrorVS},
		{"hash", nil, hashDR + "---\n" + hashVS},
		{"delegate", nil, delegateVS},
		{"tcp", nil, tcpEchoRegistry},
		{"telemetry", nil, telemetryMeshAndNamespace + "---\n" + telemetryProductpage},
		{"tls", nil, tlsOrigination + "---\n" + sniConfig},
		{"strict", nil, strictMTLS},
	}
	for _, tc := range cases {
		for _, proxy := range []Proxy{productpage, reviews} {
			t.Run(tc.name+"/"+proxy.Name, func(t *testing.T) {
				objs := load(t, "testdata/bookinfo-registry.yaml")
				for _, f := range tc.files {
					objs = append(objs, load(t, samples+f)...)
				}
				if tc.extra != "" {
					more, err := config.Parse("extra.yaml", []byte(tc.extra))
					if err != nil {
						t.Fatal(err)
					}
					objs = append(objs, more...)
				}
				in := Input{Config: objs, Registry: registry.Build(objs), Proxy: proxy}
				key, ok := ViewKey(in)
				if !ok {
					t.Fatal("ViewKey: a sidecar without EnvoyFilters cannot be split")
				}
				scope := NewScope(in.Config, in.Registry)
				if k, ok := ViewKey(scope.KeyInput(in)); k != key || !ok {
					t.Errorf("ViewKey of the scoped input %q %t, want %q", k, ok, key)
				}
				whole, err := Build(in)
				if err != nil {
					t.Fatal(err)
				}
				shared, err := BuildShared(in)
				if err != nil {
					t.Fatal(err)
				}
				own, err := BuildOwn(in)
				if err != nil {
					t.Fatal(err)
				}
				scoped, err := BuildOwn(scope.OwnInput(in))
				if err != nil {
					t.Fatal(err)
				}
				if d := cmp.Diff(string(render(t, own)), string(render(t, scoped))); d != "" {
					t.Errorf("BuildOwn of the scoped input differs (-whole +scoped):\n%s", d)
				}
				merged := Merge(shared, own)
				slices.Sort(whole.Warnings)
				slices.Sort(merged.Warnings)
				if d := cmp.Diff(string(render(t, whole)), string(render(t, merged))); d != "" {
					t.Errorf("Merge(BuildShared, BuildOwn) differs from Build (-build +merge):\n%s", d)
				}
			})
		}
	}
}

// TestViewKey: proxies that differ only in what the shared part ignores
// (name, IP, labels no selector reads) share a key; namespace, mTLS,
// locality and a matching selector set them apart; EnvoyFilters and
// gateways are not split.
func TestViewKey(t *testing.T) {
	base := Proxy{Type: ProxySidecar, Name: "a-1", Namespace: "default", IP: "127.0.1.1", Labels: map[string]string{"app": "a"}}
	with := func(f func(*Proxy)) Proxy { p := base; f(&p); return p }
	sidecar := `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: only-b, namespace: default}
spec:
  workloadSelector: {labels: {app: b}}
  egress: [{hosts: ["./*"]}]
`
	envoyFilter := `apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: {name: rl, namespace: default}
spec:
  workloadSelector: {labels: {app: c}}
  configPatches:
  - applyTo: HTTP_FILTER
    match: {context: SIDECAR_INBOUND, listener: {filterChain: {filter: {name: envoy.filters.network.http_connection_manager}}}}
    patch:
      operation: INSERT_BEFORE
      value:
        name: envoy.filters.http.local_ratelimit
        typed_config:
          "@type": type.googleapis.com/udpa.type.v1.TypedStruct
          type_url: type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
          value: {stat_prefix: http_local_rate_limiter}
`
	objs, err := config.Parse("extra.yaml", []byte(sidecar+"---\n"+envoyFilter))
	if err != nil {
		t.Fatal(err)
	}
	key := func(p Proxy) (string, bool) { return ViewKey(Input{Config: objs, Proxy: p}) }
	k0, ok := key(base)
	if !ok {
		t.Fatal("base proxy not splittable")
	}
	cases := []struct {
		name  string
		proxy Proxy
		same  bool
		split bool
	}{
		{"other name, IP and unread labels", with(func(p *Proxy) {
			p.Name, p.IP, p.Labels = "a-2", "127.0.1.2", map[string]string{"app": "a", "version": "v2"}
		}), true, true},
		{"other namespace", with(func(p *Proxy) { p.Namespace = "prod" }), false, true},
		{"mTLS", with(func(p *Proxy) { p.MTLS = true }), false, true},
		{"locality", with(func(p *Proxy) { p.Locality = "r/z" }), false, true},
		{"selected by the Sidecar", with(func(p *Proxy) { p.Labels = map[string]string{"app": "b"} }), false, true},
		{"selected by an EnvoyFilter", with(func(p *Proxy) { p.Labels = map[string]string{"app": "c"} }), false, false},
		{"gateway", with(func(p *Proxy) { p.Type = ProxyRouter }), false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			k, ok := key(tc.proxy)
			if ok != tc.split {
				t.Fatalf("splittable %t, want %t", ok, tc.split)
			}
			if ok && (k == k0) != tc.same {
				t.Errorf("same key as base: %t, want %t (%s vs %s)", k == k0, tc.same, strings.TrimSpace(k), k0)
			}
		})
	}
}
