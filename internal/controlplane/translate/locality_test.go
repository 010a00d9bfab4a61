package translate

import (
	"testing"

	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"

	"github.com/weft-mesh/weft/internal/config"
	"github.com/weft-mesh/weft/internal/controlplane/registry"
)

const localityConfig = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: echo, namespace: default}
spec:
  hosts: [echo.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{name: http, number: 8080, protocol: HTTP}]
  workloadSelector: {labels: {app: echo}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: echo-a, namespace: default}
spec: {address: 127.0.3.1, labels: {app: echo}, locality: us-east/zone-a/rack-1}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: echo-b, namespace: default}
spec: {address: 127.0.3.2, labels: {app: echo}, locality: us-east/zone-b/rack-1}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: echo-west, namespace: default}
spec: {address: 127.0.3.3, labels: {app: echo}, locality: us-west/zone-a/rack-1}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: echo-eu, namespace: default}
spec: {address: 127.0.3.4, labels: {app: echo}, locality: eu-central/zone-a/rack-1}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: echo, namespace: default}
spec:
  host: echo
  trafficPolicy:
    outlierDetection: {consecutive5xxErrors: 1, interval: 1s, baseEjectionTime: 1m}
    loadBalancer:
      localityLbSetting:
        failover: [{from: us-east, to: eu-central}]
`

// TestLocalityFailover: with outlier detection, endpoints get priorities by
// their distance from the proxy's locality, the failover rule's region
// before other regions.
func TestLocalityFailover(t *testing.T) {
	objs, err := config.Parse("locality.yaml", []byte(localityConfig))
	if err != nil {
		t.Fatal(err)
	}
	out, err := Build(Input{Config: objs, Registry: registry.Build(objs), Proxy: Proxy{Type: ProxySidecar, Name: "client",
		Namespace: "default", IP: "127.0.3.9", Locality: "us-east/zone-a/rack-9"}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]uint32{}
	for _, r := range out.Endpoints {
		la := r.(*endpoint.ClusterLoadAssignment)
		if la.GetClusterName() != "outbound|8080||echo.default.svc.cluster.local" {
			continue
		}
		for _, g := range la.GetEndpoints() {
			got[g.GetLocality().GetRegion()+"/"+g.GetLocality().GetZone()+"/"+g.GetLocality().GetSubZone()] = g.GetPriority()
		}
	}
	want := map[string]uint32{
		"us-east/zone-a/rack-1":    0, // same zone, another subzone
		"us-east/zone-b/rack-1":    1, // same region
		"eu-central/zone-a/rack-1": 2, // the failover rule's region
		"us-west/zone-a/rack-1":    3,
	}
	for l, p := range want {
		if got[l] != p {
			t.Errorf("%s: priority %d, want %d (all %v)", l, got[l], p, got)
		}
	}
}
