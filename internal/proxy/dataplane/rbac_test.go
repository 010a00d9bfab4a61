package dataplane

import (
	"net/http/httptest"
	"net/netip"
	"testing"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	rbacfilter "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	netrbac "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/rbac/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func TestRBAC(t *testing.T) {
	exact := func(s string) *matcher.StringMatcher {
		return &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Exact{Exact: s}}
	}
	allow := &rbacfilter.RBAC{Rules: &rbacv3.RBAC{Action: rbacv3.RBAC_ALLOW, Policies: map[string]*rbacv3.Policy{"p": {
		Permissions: []*rbacv3.Permission{{Rule: &rbacv3.Permission_AndRules{AndRules: &rbacv3.Permission_Set{Rules: []*rbacv3.Permission{
			{Rule: &rbacv3.Permission_Header{Header: &route.HeaderMatcher{Name: ":method", HeaderMatchSpecifier: &route.HeaderMatcher_StringMatch{StringMatch: exact("GET")}}}},
			{Rule: &rbacv3.Permission_UrlPath{UrlPath: &matcher.PathMatcher{Rule: &matcher.PathMatcher_Path{Path: &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Prefix{Prefix: "/api"}}}}}},
		}}}}},
		Principals: []*rbacv3.Principal{{Identifier: &rbacv3.Principal_OrIds{OrIds: &rbacv3.Principal_Set{Ids: []*rbacv3.Principal{
			{Identifier: &rbacv3.Principal_Authenticated_{Authenticated: &rbacv3.Principal_Authenticated{PrincipalName: exact("spiffe://cluster.local/ns/default/sa/a")}}},
			{Identifier: &rbacv3.Principal_DirectRemoteIp{DirectRemoteIp: &core.CidrRange{AddressPrefix: "10.1.0.0", PrefixLen: wrapperspb.UInt32(16)}}},
		}}}}},
	}}}}
	deny := &rbacfilter.RBAC{Rules: &rbacv3.RBAC{Action: rbacv3.RBAC_DENY, Policies: map[string]*rbacv3.Policy{"no-secret": {
		Permissions: []*rbacv3.Permission{{Rule: &rbacv3.Permission_UrlPath{UrlPath: &matcher.PathMatcher{Rule: &matcher.PathMatcher_Path{Path: exact("/api/secret")}}}}},
		Principals:  []*rbacv3.Principal{{Identifier: &rbacv3.Principal_Any{Any: true}}},
	}}}}
	var filters []*rrbac
	for _, f := range []*rbacfilter.RBAC{deny, allow} {
		r, err := compileRBAC(f)
		if err != nil {
			t.Fatal(err)
		}
		filters = append(filters, r)
	}
	tests := []struct {
		name, method, path, principal, src string
		want                               bool
	}{
		{"allowed identity", "GET", "/api/x", "spiffe://cluster.local/ns/default/sa/a", "127.0.0.1", true},
		{"allowed address", "GET", "/api/x", "", "10.1.2.3", true},
		{"other identity", "GET", "/api/x", "spiffe://cluster.local/ns/default/sa/b", "127.0.0.1", false},
		{"wrong method", "POST", "/api/x", "spiffe://cluster.local/ns/default/sa/a", "127.0.0.1", false},
		{"denied path first", "GET", "/api/secret", "spiffe://cluster.local/ns/default/sa/a", "127.0.0.1", false},
		{"no identity", "GET", "/api/x", "", "127.0.0.1", false},
	}
	for _, tt := range tests {
		r := httptest.NewRequest(tt.method, "http://svc"+tt.path, nil)
		c := &rbacCtx{req: (*stdRequest)(r), path: tt.path, principal: tt.principal, source: netip.MustParseAddr(tt.src)}
		if got := authorize(filters, c); got != tt.want {
			t.Errorf("%s: authorize = %v, want %v", tt.name, got, tt.want)
		}
	}
	// An ALLOW filter without policies (Istio's allow-nothing) denies everything.
	nothing, _ := compileRBAC(&rbacfilter.RBAC{Rules: &rbacv3.RBAC{Action: rbacv3.RBAC_ALLOW}})
	if authorize([]*rrbac{nothing}, &rbacCtx{req: (*stdRequest)(httptest.NewRequest("GET", "http://svc/", nil))}) {
		t.Error("allow-nothing allowed a request")
	}
}

// TestNetworkRBAC: the network filter decides on a connection from its
// port, peer identity and address, and refuses rules that need HTTP.
func TestNetworkRBAC(t *testing.T) {
	port := func(p uint32) *rbacv3.Permission {
		return &rbacv3.Permission{Rule: &rbacv3.Permission_DestinationPort{DestinationPort: p}}
	}
	anyID := []*rbacv3.Principal{{Identifier: &rbacv3.Principal_Any{Any: true}}}
	allow, err := compileNetworkRBAC(&netrbac.RBAC{StatPrefix: "tcp.", Rules: &rbacv3.RBAC{Action: rbacv3.RBAC_ALLOW,
		Policies: map[string]*rbacv3.Policy{"p": {Permissions: []*rbacv3.Permission{port(9000)}, Principals: anyID}}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		port uint16
		want bool
	}{{9000, true}, {9001, false}} {
		if got := authorize([]*rrbac{allow}, &rbacCtx{port: tt.port}); got != tt.want {
			t.Errorf("port %d: authorize = %v, want %v", tt.port, got, tt.want)
		}
	}
	httpOnly := []*rbacv3.Permission{{Rule: &rbacv3.Permission_OrRules{OrRules: &rbacv3.Permission_Set{Rules: []*rbacv3.Permission{
		{Rule: &rbacv3.Permission_UrlPath{UrlPath: &matcher.PathMatcher{Rule: &matcher.PathMatcher_Path{Path: &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Prefix{Prefix: "/"}}}}}},
	}}}}}
	if _, err := compileNetworkRBAC(&netrbac.RBAC{Rules: &rbacv3.RBAC{Policies: map[string]*rbacv3.Policy{"p": {Permissions: httpOnly, Principals: anyID}}}}); err == nil {
		t.Error("a network RBAC rule reading the URL path compiled")
	}
}
