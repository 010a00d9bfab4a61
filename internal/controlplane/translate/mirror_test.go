package translate

import (
	"testing"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"

	"github.com/weft-mesh/weft/internal/config"
	"github.com/weft-mesh/weft/internal/controlplane/registry"
)

const mirrorVS = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - name: mirrored
    route:
    - destination: {host: reviews, subset: v1}
    mirror: {host: reviews, subset: v2}
    mirrorPercentage: {value: 25.5}
    retries: {attempts: 3, perTryTimeout: 2s, retryOn: "gateway-error,503"}
  - name: many
    route:
    - destination: {host: reviews, subset: v1}
    mirrors:
    - destination: {host: reviews, subset: v2}
    - destination: {host: reviews, subset: v3}
      percentage: {value: 10}
    retries: {attempts: 0}
`

func TestMirrorsAndRetries(t *testing.T) {
	routes := reviewsRoutes(t, mirrorVS, "productpage")
	m := routes[0].GetRoute().GetRequestMirrorPolicies()
	if len(m) != 1 || m[0].GetCluster() != "outbound|9080|v2|reviews.default.svc.cluster.local" ||
		m[0].GetRuntimeFraction().GetDefaultValue().GetNumerator() != 255000 {
		t.Fatalf("mirror: %v", m)
	}
	if rp := routes[0].GetRoute().GetRetryPolicy(); rp.GetNumRetries().GetValue() != 3 || rp.GetRetryOn() != "gateway-error,retriable-status-codes" {
		t.Fatalf("retries: %v", rp)
	}
	m = routes[1].GetRoute().GetRequestMirrorPolicies()
	if len(m) != 2 || m[0].GetRuntimeFraction().GetDefaultValue().GetNumerator() != 1000000 ||
		m[1].GetCluster() != "outbound|9080|v3|reviews.default.svc.cluster.local" || m[1].GetRuntimeFraction().GetDefaultValue().GetNumerator() != 100000 {
		t.Fatalf("mirrors: %v", m)
	}
	if routes[1].GetRoute().GetRetryPolicy() != nil {
		t.Fatalf("attempts 0 must disable retries: %v", routes[1].GetRoute().GetRetryPolicy())
	}
}

const hashDR = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  trafficPolicy:
    loadBalancer:
      consistentHash: {httpCookie: {name: user, ttl: 0s}}
  subsets:
  - name: v1
    labels: {version: v1}
    trafficPolicy:
      loadBalancer:
        consistentHash: {httpHeaderName: x-user, maglev: {tableSize: 251}}
`

const hashVS = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - name: v1
    match: [{headers: {x-user: {prefix: a}}}]
    route: [{destination: {host: reviews, subset: v1}}]
  - name: all
    route: [{destination: {host: reviews}}]
`

func TestConsistentHash(t *testing.T) {
	routes := reviewsRoutes(t, hashDR+"---\n"+hashVS, "productpage")
	if h := routes[0].GetRoute().GetHashPolicy(); len(h) != 1 || h[0].GetHeader().GetHeaderName() != "x-user" {
		t.Fatalf("subset route hash policy: %v", h)
	}
	if h := routes[1].GetRoute().GetHashPolicy(); len(h) != 1 || h[0].GetCookie().GetName() != "user" {
		t.Fatalf("service route hash policy: %v", h)
	}
	objs := load(t, "testdata/bookinfo-registry.yaml")
	dr, err := config.Parse("dr.yaml", []byte(hashDR))
	if err != nil {
		t.Fatal(err)
	}
	objs = append(objs, dr...)
	out, err := Build(Input{Config: objs, Registry: registry.Build(objs), Proxy: Proxy{Type: ProxySidecar, Name: "productpage-v1-1",
		Namespace: "default", IP: "127.0.9.9", Labels: map[string]string{"app": "productpage"}}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]cluster.Cluster_LbPolicy{
		"outbound|9080||reviews.default.svc.cluster.local":   cluster.Cluster_RING_HASH,
		"outbound|9080|v1|reviews.default.svc.cluster.local": cluster.Cluster_MAGLEV,
	}
	for _, res := range out.Clusters {
		c := res.(*cluster.Cluster)
		if p, ok := want[c.GetName()]; ok {
			if c.GetLbPolicy() != p {
				t.Errorf("%s: lb_policy %s, want %s", c.GetName(), c.GetLbPolicy(), p)
			}
			delete(want, c.GetName())
		}
	}
	if len(want) > 0 {
		t.Errorf("clusters missing: %v", want)
	}
}

const delegateVS = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - name: api
    match: [{uri: {prefix: /api}, headers: {x-team: {exact: a}}}]
    delegate: {name: reviews-api, namespace: default}
  - name: rest
    match: [{scheme: {exact: http}}]
    route:
    - destination: {host: reviews, subset: v1}
      weight: 90
      headers: {request: {set: {x-dest: v1}}}
    - destination: {host: reviews, subset: v2}
      weight: 10
      headers: {response: {add: {x-dest: v2}}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews-api, namespace: default}
spec:
  http:
  - name: api-v2
    match: [{uri: {prefix: /api/v2}}]
    route: [{destination: {host: reviews, subset: v2}}]
  - name: api-rest
    route: [{destination: {host: reviews, subset: v1}}]
`

// TestDelegateSchemeAndDestinationHeaders: a delegating route is replaced
// by the delegate's routes with the parent's match merged in; scheme
// becomes a :scheme matcher; per-destination headers ride on the weights.
func TestDelegateSchemeAndDestinationHeaders(t *testing.T) {
	routes := reviewsRoutes(t, delegateVS, "productpage")
	if len(routes) != 3 || routes[0].GetName() != "api-v2" || routes[1].GetName() != "api-rest" || routes[2].GetName() != "rest" {
		t.Fatalf("routes %v", routes)
	}
	if routes[0].GetMatch().GetPrefix() != "/api/v2" || len(routes[0].GetMatch().GetHeaders()) != 1 ||
		routes[0].GetMatch().GetHeaders()[0].GetName() != "x-team" {
		t.Errorf("api-v2 must keep its uri and take the parent's header: %v", routes[0].GetMatch())
	}
	if routes[1].GetMatch().GetPrefix() != "/api" {
		t.Errorf("api-rest takes the parent's uri: %v", routes[1].GetMatch())
	}
	if h := routes[2].GetMatch().GetHeaders(); len(h) != 1 || h[0].GetName() != ":scheme" || h[0].GetStringMatch().GetExact() != "http" {
		t.Errorf("scheme match: %v", h)
	}
	wc := routes[2].GetRoute().GetWeightedClusters().GetClusters()
	if len(wc) != 2 || wc[0].GetRequestHeadersToAdd()[0].GetHeader().GetKey() != "x-dest" || wc[1].GetResponseHeadersToAdd()[0].GetHeader().GetValue() != "v2" {
		t.Errorf("per-destination headers: %v", wc)
	}
}
