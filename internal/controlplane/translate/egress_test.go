package translate

import (
	"strings"
	"testing"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/weft-mesh/weft/internal/config"
	"github.com/weft-mesh/weft/internal/controlplane/registry"
)

func TestEgressAllows(t *testing.T) {
	reviews := &registry.Service{Hostname: "reviews.default.svc.cluster.local", Name: "reviews", Namespace: "default"}
	google := &registry.Service{Hostname: "www.google.com", Name: "www.google.com", Namespace: "egress"}
	tests := []struct {
		hosts []string
		svc   *registry.Service
		want  bool
	}{
		{[]string{"./*"}, reviews, true},
		{[]string{"./*"}, google, false},
		{[]string{"*/*"}, google, true},
		{[]string{"egress/*.google.com"}, google, true},
		{[]string{"default/*.google.com"}, google, false},
		{[]string{"~/*"}, reviews, false},
		{[]string{"*/reviews.default.svc.cluster.local"}, reviews, true},
		{[]string{"istio-system/*", "./ratings.default.svc.cluster.local"}, reviews, false},
	}
	for _, tt := range tests {
		if got := egressAllows(tt.hosts, "default", tt.svc); got != tt.want {
			t.Errorf("egressAllows(%v, %s) = %v, want %v", tt.hosts, tt.svc.Hostname, got, tt.want)
		}
	}
}

const egressConfig = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: httpbin, namespace: default}
spec:
  hosts: [httpbin.org]
  location: MESH_EXTERNAL
  resolution: DNS
  ports: [{number: 80, name: http, protocol: HTTP}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: wikipedia, namespace: default}
spec:
  hosts: ["*.wikipedia.org"]
  location: MESH_EXTERNAL
  resolution: NONE
  ports: [{number: 443, name: tls, protocol: TLS}]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: default}
spec:
  outboundTrafficPolicy: {mode: REGISTRY_ONLY}
  egress:
  - hosts: ["./reviews.default.svc.cluster.local", "./httpbin.org", "./*.wikipedia.org"]
`

func buildFor(t *testing.T, extra string, mesh Mesh) *Output {
	t.Helper()
	objs := load(t, "testdata/bookinfo-registry.yaml")
	more, err := config.Parse("extra.yaml", []byte(extra))
	if err != nil {
		t.Fatal(err)
	}
	objs = append(objs, more...)
	out, err := Build(Input{Config: objs, Registry: registry.Build(objs), Mesh: mesh, Proxy: Proxy{Type: ProxySidecar, Name: "productpage-v1-1",
		Namespace: "default", IP: "127.0.1.1", Labels: map[string]string{"app": "productpage"}}})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestEgress: a Sidecar's egress hosts scope the proxy's clusters and its
// REGISTRY_ONLY policy black-holes unknown destinations; DNS and NONE
// ServiceEntries become STRICT_DNS and ORIGINAL_DST clusters.
func TestEgress(t *testing.T) {
	out := buildFor(t, egressConfig, Mesh{})
	clusters := map[string]*cluster.Cluster{}
	for _, r := range out.Clusters {
		c := r.(*cluster.Cluster)
		clusters[c.GetName()] = c
	}
	if _, ok := clusters["outbound|9080||ratings.default.svc.cluster.local"]; ok {
		t.Error("ratings is outside the Sidecar's egress hosts but has a cluster")
	}
	if _, ok := clusters["outbound|9080||reviews.default.svc.cluster.local"]; !ok {
		t.Error("reviews is in the egress hosts but has no cluster")
	}
	dns := clusters["outbound|80||httpbin.org"]
	if dns.GetType() != cluster.Cluster_STRICT_DNS || dns.GetLoadAssignment().GetEndpoints()[0].GetLbEndpoints()[0].GetEndpoint().GetAddress().GetSocketAddress().GetAddress() != "httpbin.org" {
		t.Errorf("DNS ServiceEntry cluster: %v", dns)
	}
	if c := clusters["outbound|443||*.wikipedia.org"]; c.GetType() != cluster.Cluster_ORIGINAL_DST || c.GetLbPolicy() != cluster.Cluster_CLUSTER_PROVIDED {
		t.Errorf("NONE ServiceEntry cluster: %v", c)
	}
	for _, r := range out.Listeners {
		l := r.(*listener.Listener)
		if l.GetName() == VirtualOutbound && !strings.Contains(l.GetFilterChains()[0].String(), BlackHoleCluster) {
			t.Errorf("REGISTRY_ONLY: virtualOutbound must send unknown destinations to BlackHoleCluster: %v", l.GetFilterChains()[0])
		}
	}
	for _, r := range out.Routes {
		rc := r.(*route.RouteConfiguration)
		last := rc.GetVirtualHosts()[len(rc.GetVirtualHosts())-1]
		if last.GetName() != "block_all" || last.GetRoutes()[0].GetDirectResponse().GetStatus() != 502 {
			t.Errorf("route %s: last virtual host %v, want block_all answering 502", rc.GetName(), last)
		}
	}
	// The mesh-wide default is ALLOW_ANY; the flag turns REGISTRY_ONLY on everywhere.
	open := buildFor(t, "", Mesh{})
	closed := buildFor(t, "", Mesh{OutboundTrafficPolicy: RegistryOnly})
	if !strings.Contains(open.Listeners[0].(*listener.Listener).String(), PassthroughCluster) ||
		!strings.Contains(closed.Listeners[0].(*listener.Listener).String(), BlackHoleCluster) {
		t.Error("Mesh.OutboundTrafficPolicy is not honoured")
	}
}
