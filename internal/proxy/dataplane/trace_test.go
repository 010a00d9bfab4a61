package dataplane

import (
	"net/http"
	"testing"
	"time"

	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
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
