package translate

import (
	"testing"

	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
)

// TestDecorate checks the span names routes give, as Istio names them.
func TestDecorate(t *testing.T) {
	one := func(c string) *route.Route_Route {
		return &route.Route_Route{Route: &route.RouteAction{ClusterSpecifier: &route.RouteAction_Cluster{Cluster: c}}}
	}
	weighted := &route.Route_Route{Route: &route.RouteAction{ClusterSpecifier: &route.RouteAction_WeightedClusters{
		WeightedClusters: &route.WeightedCluster{Clusters: []*route.WeightedCluster_ClusterWeight{{Name: "outbound|9080|v1|reviews.default.svc.cluster.local"}}}}}}
	for _, tc := range []struct {
		name   string
		match  *route.RouteMatch
		action any
		want   string
	}{
		{"default route", &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/"}},
			one("outbound|9080||reviews.default.svc.cluster.local"), "reviews.default.svc.cluster.local:9080/*"},
		{"subset", &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/"}},
			one("outbound|9080|v2|reviews.default.svc.cluster.local"), "reviews.default.svc.cluster.local:9080/*"},
		{"exact path at the ingress", &route.RouteMatch{PathSpecifier: &route.RouteMatch_Path{Path: "/productpage"}},
			one("outbound|9080||productpage.default.svc.cluster.local"), "productpage.default.svc.cluster.local:9080/productpage"},
		{"prefix", &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/static"}},
			one("outbound|9080||productpage.default.svc.cluster.local"), "productpage.default.svc.cluster.local:9080/static*"},
		{"regex", &route.RouteMatch{PathSpecifier: &route.RouteMatch_SafeRegex{SafeRegex: &matcher.RegexMatcher{Regex: "/api/.*"}}},
			one("outbound|8000||httpbin.default.svc.cluster.local"), "httpbin.default.svc.cluster.local:8000/api/.*"},
		{"weighted clusters: the VirtualService", &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/"}},
			weighted, "reviews:8080/*"},
		{"a direct response: the VirtualService", &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/"}},
			&route.Route_DirectResponse{DirectResponse: &route.DirectResponseAction{Status: 503}}, "reviews:8080/*"},
		{"no match", nil, one("outbound|9080||details.default.svc.cluster.local"), "details.default.svc.cluster.local:9080/*"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &route.Route{Match: tc.match}
			switch a := tc.action.(type) {
			case *route.Route_Route:
				r.Action = a
			case *route.Route_DirectResponse:
				r.Action = a
			}
			decorate(r, "reviews", 8080)
			if got := r.GetDecorator().GetOperation(); got != tc.want {
				t.Errorf("operation %q, want %q", got, tc.want)
			}
		})
	}
}
