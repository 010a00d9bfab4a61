package translate

import (
	"testing"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
)

// TestMatchGateways: a match's gateways pick where its route applies —
// "mesh" for sidecars, a Gateway (qualified by the VirtualService's
// namespace) for routers; a match naming none applies everywhere.
func TestMatchGateways(t *testing.T) {
	gw := []string{"default/istio-egressgateway"}
	tests := []struct {
		name     string
		match    []string
		gateways []string
		want     bool
	}{
		{"no gateways: sidecar", nil, nil, true},
		{"no gateways: router", nil, gw, true},
		{"mesh on a sidecar", []string{"mesh"}, nil, true},
		{"mesh on a router", []string{"mesh"}, gw, false},
		{"gateway on a sidecar", []string{"istio-egressgateway"}, nil, false},
		{"gateway on its router", []string{"istio-egressgateway"}, gw, true},
		{"qualified gateway on its router", []string{"default/istio-egressgateway"}, gw, true},
		{"other gateway", []string{"istio-ingressgateway"}, gw, false},
	}
	for _, tt := range tests {
		if got := matchGateways(tt.match, "default", tt.gateways); got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestPassthroughLoadBalancer: loadBalancer PASSTHROUGH makes the
// subset's cluster ORIGINAL_DST with no endpoints; the other subsets stay EDS.
func TestPassthroughLoadBalancer(t *testing.T) {
	out := buildFor(t, `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}, trafficPolicy: {loadBalancer: {simple: PASSTHROUGH}}}
  - {name: v2, labels: {version: v2}}
`, Mesh{})
	types := map[string]cluster.Cluster_DiscoveryType{}
	for _, r := range out.Clusters {
		c := r.(*cluster.Cluster)
		types[c.GetName()] = c.GetType()
	}
	v1, v2 := OutboundCluster(9080, "v1", "reviews.default.svc.cluster.local"), OutboundCluster(9080, "v2", "reviews.default.svc.cluster.local")
	if types[v1] != cluster.Cluster_ORIGINAL_DST || types[v2] != cluster.Cluster_EDS {
		t.Fatalf("cluster types: v1 %v, v2 %v; want ORIGINAL_DST and EDS", types[v1], types[v2])
	}
	for _, r := range out.Endpoints {
		if resourceName(r) == v1 {
			t.Errorf("the PASSTHROUGH cluster has endpoints")
		}
	}
}
