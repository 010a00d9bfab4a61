package dataplane

import (
	"net/http"
	"testing"
	"time"

	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	rbacfilter "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func TestTraceRoute(t *testing.T) {
	to := func(c string) *route.Route_Route {
		return &route.Route_Route{Route: &route.RouteAction{ClusterSpecifier: &route.RouteAction_Cluster{Cluster: c},
			Timeout: durationpb.New(3 * time.Second), RetryPolicy: &route.RetryPolicy{RetryOn: "5xx", NumRetries: wrapperspb.UInt32(2)}}}
	}
	rc := &route.RouteConfiguration{Name: "9080", VirtualHosts: []*route.VirtualHost{{
		Name: "reviews.default.svc.cluster.local:9080", Domains: []string{"reviews", "reviews:9080"},
		Routes: []*route.Route{
			{Name: "jason", Match: &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/"},
				Headers: []*route.HeaderMatcher{{Name: "end-user", HeaderMatchSpecifier: &route.HeaderMatcher_StringMatch{
					StringMatch: &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Exact{Exact: "jason"}}}}}},
				Action: to("outbound|9080|v2|reviews.default.svc.cluster.local")},
			{Name: "api", Match: &route.RouteMatch{PathSpecifier: &route.RouteMatch_Path{Path: "/api"}},
				Action: to("outbound|9080|v3|reviews.default.svc.cluster.local")},
			{Match: &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/reviews"}},
				Action: to("outbound|9080|v1|reviews.default.svc.cluster.local")},
		},
	}}}
	tests := []struct {
		name      string
		authority string
		path      string
		header    http.Header
		vhost     string
		skipped   []string
		cluster   string
	}{
		{"header matches", "reviews:9080", "/reviews/0", http.Header{"End-User": {"jason"}}, "reviews.default.svc.cluster.local:9080", nil, "outbound|9080|v2|reviews.default.svc.cluster.local"},
		{"falls through", "reviews", "/reviews/0", http.Header{"End-User": {"bob"}}, "reviews.default.svc.cluster.local:9080",
			[]string{"header end-user does not match exact jason", "path /reviews/0 is not /api"}, "outbound|9080|v1|reviews.default.svc.cluster.local"},
		{"header absent", "reviews", "/api", nil, "reviews.default.svc.cluster.local:9080",
			[]string{"header end-user does not match exact jason"}, "outbound|9080|v3|reviews.default.svc.cluster.local"},
		{"no route", "reviews", "/other", nil, "reviews.default.svc.cluster.local:9080",
			[]string{"header end-user does not match exact jason", "path /other is not /api", "path /other does not start with /reviews"}, ""},
		{"no virtual host", "reviews:9081", "/reviews/0", nil, "", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, err := TraceRoute(rc, http.MethodGet, tt.authority, tt.path, tt.header)
			if err != nil {
				t.Fatal(err)
			}
			if tr.VirtualHost != tt.vhost {
				t.Errorf("virtual host %q, want %q", tr.VirtualHost, tt.vhost)
			}
			if len(tr.Skipped) != len(tt.skipped) {
				t.Fatalf("skipped %+v, want %q", tr.Skipped, tt.skipped)
			}
			for i, s := range tr.Skipped {
				if s.Why != tt.skipped[i] || s.Index != i {
					t.Errorf("skipped[%d] = %+v, want %q", i, s, tt.skipped[i])
				}
			}
			got := ""
			if tr.Route != nil {
				got = tr.Route.Clusters[0].Name
				if tr.Route.Timeout != 3*time.Second || tr.Route.Retries != 2 {
					t.Errorf("timeout %s retries %d, want 3s and 2", tr.Route.Timeout, tr.Route.Retries)
				}
			}
			if got != tt.cluster {
				t.Errorf("cluster %q, want %q", got, tt.cluster)
			}
		})
	}
}

func TestTraceRBAC(t *testing.T) {
	methodIs := func(m string) *rbacv3.Permission {
		return &rbacv3.Permission{Rule: &rbacv3.Permission_Header{Header: &route.HeaderMatcher{Name: ":method",
			HeaderMatchSpecifier: &route.HeaderMatcher_StringMatch{StringMatch: &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Exact{Exact: m}}}}}}
	}
	anyone := []*rbacv3.Principal{{Identifier: &rbacv3.Principal_Any{Any: true}}}
	filter := func(action rbacv3.RBAC_Action, policies map[string]*rbacv3.Policy) *rbacfilter.RBAC {
		return &rbacfilter.RBAC{Rules: &rbacv3.RBAC{Action: action, Policies: policies}}
	}
	deny := filter(rbacv3.RBAC_DENY, map[string]*rbacv3.Policy{"ns[default]-policy[deny-post]-rule[0]": {Permissions: []*rbacv3.Permission{methodIs("POST")}, Principals: anyone}})
	allow := filter(rbacv3.RBAC_ALLOW, map[string]*rbacv3.Policy{"ns[default]-policy[viewer]-rule[0]": {Permissions: []*rbacv3.Permission{methodIs("GET")}, Principals: anyone}})
	allowNothing := filter(rbacv3.RBAC_ALLOW, nil)
	tests := []struct {
		name    string
		filters []*rbacfilter.RBAC
		method  string
		want    AuthzDecision
	}{
		{"no filters", nil, "GET", AuthzDecision{Allowed: true}},
		{"denied", []*rbacfilter.RBAC{deny, allow}, "POST", AuthzDecision{Action: "DENY", Policy: "ns[default]-policy[deny-post]-rule[0]"}},
		{"allowed by policy", []*rbacfilter.RBAC{deny, allow}, "GET", AuthzDecision{Allowed: true, Action: "ALLOW", Policy: "ns[default]-policy[viewer]-rule[0]"}},
		{"not allowed", []*rbacfilter.RBAC{allow}, "PUT", AuthzDecision{Action: "ALLOW"}},
		{"allow nothing", []*rbacfilter.RBAC{allowNothing}, "GET", AuthzDecision{Action: "ALLOW"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := TraceRBAC(tt.filters, AuthzRequest{Method: tt.method, Authority: "reviews:9080", PathQuery: "/reviews/0", Port: 9080})
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}
