package translate

import (
	"testing"

	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	rbacfilter "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/proto"
	security "istio.io/api/security/v1beta1"
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

// TestTCPRule: on TCP, an ALLOW rule with an HTTP-only field never
// matches; a DENY rule loses its HTTP-only fields (Istio's authz-tcp task).
func TestTCPRule(t *testing.T) {
	ports := &security.Rule_To{Operation: &security.Operation{Ports: []string{"9000"}}}
	withMethod := &security.Rule_To{Operation: &security.Operation{Ports: []string{"9000"}, Methods: []string{"GET"}}}
	jwt := &security.Rule_From{Source: &security.Source{RequestPrincipals: []string{"*"}, Namespaces: []string{"foo"}}}
	header := &security.Condition{Key: "request.headers[x-a]", Values: []string{"b"}}
	ip := &security.Condition{Key: "source.ip", Values: []string{"10.0.0.1"}}
	tests := []struct {
		name   string
		rule   *security.Rule
		action security.AuthorizationPolicy_Action
		want   *security.Rule // nil: the rule is dropped
	}{
		{"ports only: kept", &security.Rule{To: []*security.Rule_To{ports}}, security.AuthorizationPolicy_ALLOW, &security.Rule{To: []*security.Rule_To{ports}}},
		{"ALLOW with methods: dropped", &security.Rule{To: []*security.Rule_To{withMethod}}, security.AuthorizationPolicy_ALLOW, nil},
		{"ALLOW with requestPrincipals: dropped", &security.Rule{From: []*security.Rule_From{jwt}}, security.AuthorizationPolicy_ALLOW, nil},
		{"ALLOW with a header condition: dropped", &security.Rule{When: []*security.Condition{header}}, security.AuthorizationPolicy_ALLOW, nil},
		{"DENY with methods: ports kept", &security.Rule{To: []*security.Rule_To{withMethod}}, security.AuthorizationPolicy_DENY, &security.Rule{To: []*security.Rule_To{ports}}},
		{"DENY with a header condition: other conditions kept", &security.Rule{When: []*security.Condition{header, ip}}, security.AuthorizationPolicy_DENY, &security.Rule{When: []*security.Condition{ip}}},
		{"DENY with requestPrincipals: namespaces kept", &security.Rule{From: []*security.Rule_From{jwt}}, security.AuthorizationPolicy_DENY,
			&security.Rule{From: []*security.Rule_From{{Source: &security.Source{Namespaces: []string{"foo"}}}}}},
	}
	for _, tt := range tests {
		got := tcpRule(tt.rule, tt.action)
		if (got == nil) != (tt.want == nil) || (got != nil && !proto.Equal(got, tt.want)) {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
}
