package translate

import (
	"testing"

	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"

	"github.com/weft-mesh/weft/internal/config"
	"github.com/weft-mesh/weft/internal/controlplane/registry"
)

// ratingsWithImpostor is ratings with its real sidecar (mTLS) and an
// endpoint that claims no mTLS, however it was registered.
const ratingsWithImpostor = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ratings, namespace: default}
spec:
  hosts: [ratings.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: ratings}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: ratings-v1-1, namespace: default, annotations: {weft.io/mtls: "true"}}
spec: {address: 127.0.1.6, labels: {app: ratings, version: v1}, serviceAccount: bookinfo-ratings}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: ratings-evil, namespace: default}
spec: {address: 127.0.81.50, labels: {app: ratings, version: v1}}
`

// TestStrictNeverPlaintext: under STRICT every endpoint of the destination
// gets mTLS, whatever its WorkloadEntry claims, and a proxy that cannot
// speak mTLS gets none of them; under PERMISSIVE auto mTLS goes by the
// endpoint's sidecar.
func TestStrictNeverPlaintext(t *testing.T) {
	const cluster = "outbound|9080||ratings.default.svc.cluster.local"
	reviews := Proxy{ID: "sidecar~127.0.1.4~reviews-v2-1.default~default.svc.cluster.local", Type: ProxySidecar,
		Name: "reviews-v2-1", Namespace: "default", IP: "127.0.1.4", Labels: map[string]string{"app": "reviews", "version": "v2"}}
	tests := []struct {
		name   string
		strict bool
		mtls   bool              // the client proxy speaks mTLS
		want   map[string]string // endpoint address -> its transport match's "mtls"
	}{
		{"strict", true, true, map[string]string{"127.0.1.6": "true", "127.0.81.50": "true"}},
		{"strict, client without mTLS", true, false, map[string]string{}},
		{"permissive", false, true, map[string]string{"127.0.1.6": "true", "127.0.81.50": ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			yaml := ratingsWithImpostor
			if tt.strict {
				yaml += "---\n" + strictMTLS
			}
			objs, err := config.Parse("test.yaml", []byte(yaml))
			if err != nil {
				t.Fatal(err)
			}
			p := reviews
			p.MTLS = tt.mtls
			out, err := Build(Input{Config: objs, Registry: registry.Build(objs), Proxy: p})
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			found := false
			for _, r := range out.Endpoints {
				cla := r.(*endpoint.ClusterLoadAssignment)
				if cla.GetClusterName() != cluster {
					continue
				}
				found = true
				for _, l := range cla.GetEndpoints() {
					for _, ep := range l.GetLbEndpoints() {
						addr := ep.GetEndpoint().GetAddress().GetSocketAddress().GetAddress()
						got[addr] = ep.GetMetadata().GetFilterMetadata()[transportMatchNS].GetFields()["mtls"].GetStringValue()
					}
				}
			}
			if !found {
				t.Fatalf("no load assignment for %s", cluster)
			}
			if len(got) != len(tt.want) {
				t.Errorf("endpoints %v, want %v", got, tt.want)
			}
			for addr, w := range tt.want {
				if g, ok := got[addr]; !ok || g != w {
					t.Errorf("endpoint %s: mtls %q (present %t), want %q", addr, g, ok, w)
				}
			}
		})
	}
}
