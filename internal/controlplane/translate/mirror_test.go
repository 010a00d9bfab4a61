package translate

import "testing"

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
