package translate

import (
	"testing"

	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	rbacfilter "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
)

const authzConfig = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-admin, namespace: istio-system}
spec:
  action: DENY
  rules: [{to: [{operation: {paths: ["/admin*"]}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: productpage-viewer, namespace: default}
spec:
  selector: {matchLabels: {app: productpage}}
  rules:
  - from: [{source: {principals: ["cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account"], notNamespaces: [blocked]}}]
    to: [{operation: {methods: ["GET"], ports: ["9080"]}}]
    when: [{key: "request.headers[x-team]", values: ["a", "b*"]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: reviews-only, namespace: default}
spec:
  selector: {matchLabels: {app: reviews}}
  rules: [{}]
`

// TestAuthorizationFilters: DENY before ALLOW on the inbound chains of the
// selected workload only; rules become Envoy RBAC policies.
func TestAuthorizationFilters(t *testing.T) {
	out := buildFor(t, authzConfig, Mesh{})
	var got []*rbacfilter.RBAC
	for _, r := range out.Listeners {
		l := r.(*listener.Listener)
		for _, fc := range l.GetFilterChains() {
			m := &hcm.HttpConnectionManager{}
			if fc.GetFilters()[0].GetTypedConfig().UnmarshalTo(m) != nil {
				continue
			}
			for _, hf := range m.GetHttpFilters() {
				if hf.GetName() != RBACFilter {
					continue
				}
				if l.GetName() != VirtualInbound {
					t.Fatalf("RBAC on %s: only inbound chains enforce authorization", l.GetName())
				}
				cfg := &rbacfilter.RBAC{}
				hf.GetTypedConfig().UnmarshalTo(cfg)
				got = append(got, cfg)
			}
			if len(got) > 0 {
				break
			}
		}
	}
	if len(got) != 2 || got[0].GetRules().GetAction() != rbacv3.RBAC_DENY || got[1].GetRules().GetAction() != rbacv3.RBAC_ALLOW {
		t.Fatalf("want DENY then ALLOW on productpage, got %v", got)
	}
	allow := got[1].GetRules().GetPolicies()
	if len(allow) != 1 || allow["ns[default]-policy[productpage-viewer]-rule[0]"] == nil {
		t.Fatalf("ALLOW policies %v (the reviews policy must not select productpage)", allow)
	}
	if err := got[1].Validate(); err != nil {
		t.Fatal(err)
	}
}
