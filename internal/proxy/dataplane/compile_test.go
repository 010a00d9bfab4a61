package dataplane

import (
	"net/http/httptest"
	"strings"
	"testing"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func TestRouteMatching(t *testing.T) {
	rc := &route.RouteConfiguration{Name: "9080", VirtualHosts: []*route.VirtualHost{
		{Name: "reviews", Domains: []string{"reviews", "reviews:9080"}, Routes: []*route.Route{
			{Name: "jason", Match: &route.RouteMatch{
				PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/"},
				Headers: []*route.HeaderMatcher{{Name: "end-user", HeaderMatchSpecifier: &route.HeaderMatcher_StringMatch{
					StringMatch: &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Exact{Exact: "jason"}}}}},
			}, Action: clusterAction("v2")},
			{Name: "exact", Match: &route.RouteMatch{PathSpecifier: &route.RouteMatch_Path{Path: "/exact"}}, Action: clusterAction("exact")},
			{Name: "regex", Match: &route.RouteMatch{PathSpecifier: &route.RouteMatch_SafeRegex{SafeRegex: &matcher.RegexMatcher{Regex: "/r/[0-9]+"}}}, Action: clusterAction("regex")},
			{Name: "query", Match: &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/q"},
				QueryParameters: []*route.QueryParameterMatcher{{Name: "x", QueryParameterMatchSpecifier: &route.QueryParameterMatcher_StringMatch{
					StringMatch: &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Prefix{Prefix: "a"}}}}}}, Action: clusterAction("query")},
			{Name: "default", Match: &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/"}}, Action: clusterAction("v1")},
		}},
		{Name: "wild", Domains: []string{"*.example.com"}, Routes: []*route.Route{{Match: &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/"}}, Action: clusterAction("wild")}}},
		{Name: "allow_any", Domains: []string{"*"}, Routes: []*route.Route{{Match: &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/"}}, Action: clusterAction("any")}}},
	}}
	tbl, err := compileRoutes(rc)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		host, target, user, want string
	}{
		{"reviews:9080", "/reviews/0", "", "v1"},
		{"reviews:9080", "/reviews/0", "jason", "v2"},
		{"reviews", "/exact", "", "exact"},
		{"reviews", "/exact/more", "", "v1"},
		{"reviews", "/r/42", "", "regex"},
		{"reviews", "/r/42x", "", "v1"},
		{"reviews", "/q?x=abc", "", "query"},
		{"reviews", "/q?x=zzz", "", "v1"},
		{"api.example.com", "/", "", "wild"},
		{"other:80", "/", "", "any"},
	}
	for _, tc := range cases {
		r := httptest.NewRequest("GET", "http://"+tc.host+tc.target, nil)
		if tc.user != "" {
			r.Header.Set("end-user", tc.user)
		}
		vh := tbl.vhost(tc.host)
		if vh == nil {
			t.Fatalf("%s: no virtual host", tc.host)
		}
		rt := vh.route((*stdRequest)(r))
		if rt == nil || rt.cluster() != tc.want {
			t.Errorf("%s%s user %q: got %v, want %s", tc.host, tc.target, tc.user, rt, tc.want)
		}
	}
}

func clusterAction(c string) *route.Route_Route {
	return &route.Route_Route{Route: &route.RouteAction{ClusterSpecifier: &route.RouteAction_Cluster{Cluster: c}}}
}

func TestWeightedClusters(t *testing.T) {
	r := &route.Route{Match: &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/"}},
		Action: &route.Route_Route{Route: &route.RouteAction{ClusterSpecifier: &route.RouteAction_WeightedClusters{WeightedClusters: &route.WeightedCluster{
			Clusters: []*route.WeightedCluster_ClusterWeight{{Name: "a", Weight: wrapperspb.UInt32(80)}, {Name: "b", Weight: wrapperspb.UInt32(20)}}}}}}}
	rr, err := compileRoute(r)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for range 10000 {
		counts[rr.cluster()]++
	}
	// 80% of 10000, sd 40: allow ±5 sd.
	if counts["a"] < 7800 || counts["a"] > 8200 {
		t.Errorf("weights 80/20 gave %v", counts)
	}
}

// TestRefused lists config weft proxy cannot honour: each must be refused (NACK), naming what.
func TestRefused(t *testing.T) {
	cases := []struct {
		name string
		cfg  config
		want string
	}{
		{"unknown network filter", config{listeners: map[string]*listener.Listener{"l": {
			Name: "l", Address: sock("0.0.0.0", 80),
			FilterChains: []*listener.FilterChain{{Filters: []*listener.Filter{{Name: "envoy.filters.network.mongo_proxy",
				ConfigType: &listener.Filter_TypedConfig{TypedConfig: mustAny(t, &cluster.Cluster{})}}}}},
		}}}, "not supported"},
		{"unknown listener filter", config{listeners: map[string]*listener.Listener{"l": {
			Name: "l", Address: sock("0.0.0.0", 80), ListenerFilters: []*listener.ListenerFilter{{Name: "envoy.filters.listener.local_ratelimit"}},
		}}}, "local_ratelimit"},
		{"unknown retry condition", config{routes: map[string]*route.RouteConfiguration{"r": {Name: "r", VirtualHosts: []*route.VirtualHost{{
			Name: "v", Domains: []string{"*"}, Routes: []*route.Route{{Match: &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/"}},
				Action: &route.Route_Route{Route: &route.RouteAction{ClusterSpecifier: &route.RouteAction_Cluster{Cluster: "c"},
					RetryPolicy: &route.RetryPolicy{RetryOn: "envoy-ratelimited"}}}}},
		}}}}}, "envoy-ratelimited"},
		{"filter action", config{routes: map[string]*route.RouteConfiguration{"r": {Name: "r", VirtualHosts: []*route.VirtualHost{{
			Name: "v", Domains: []string{"*"}, Routes: []*route.Route{{Match: &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/"}},
				Action: &route.Route_FilterAction{FilterAction: &route.FilterAction{}}}},
		}}}}}, "filter_action"},
		{"cluster provided without original dst", config{clusters: map[string]*cluster.Cluster{"c": {Name: "c", ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_STATIC},
			LbPolicy: cluster.Cluster_CLUSTER_PROVIDED, ConnectTimeout: durationpb.New(1e9)}}}, "CLUSTER_PROVIDED"},
		{"maglev table too small", config{clusters: map[string]*cluster.Cluster{"c": {Name: "c", ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_STATIC},
			LbPolicy: cluster.Cluster_MAGLEV, LbConfig: &cluster.Cluster_MaglevLbConfig_{MaglevLbConfig: &cluster.Cluster_MaglevLbConfig{TableSize: wrapperspb.UInt64(1)}},
			ConnectTimeout: durationpb.New(1e9)}}}, "table_size"},
		{"tls transport socket", config{clusters: map[string]*cluster.Cluster{"c": {Name: "c", ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_STATIC},
			TransportSocket: &core.TransportSocket{Name: "envoy.transport_sockets.tls", ConfigType: &core.TransportSocket_TypedConfig{TypedConfig: mustAny(t, &route.Route{})}}}}}, "not supported"},
	}
	cases = append(cases, []struct {
		name string
		cfg  config
		want string
	}{
		{"source prefix match", config{listeners: map[string]*listener.Listener{"l": {Name: "l", Address: sock("0.0.0.0", 80),
			FilterChains: []*listener.FilterChain{{FilterChainMatch: &listener.FilterChainMatch{SourcePorts: []uint32{1}}}}}}}, "only destination_port, server_names"},
		{"grpc match", config{routes: map[string]*route.RouteConfiguration{"r": {Name: "r", VirtualHosts: []*route.VirtualHost{{
			Name: "v", Domains: []string{"*"}, Routes: []*route.Route{{Match: &route.RouteMatch{Grpc: &route.RouteMatch_GrpcRouteMatchOptions{},
				PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/"}}, Action: clusterAction("c")}}}}}}}, "match.grpc"},
		{"success-rate outlier detection", config{clusters: map[string]*cluster.Cluster{"c": {Name: "c", ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_STATIC},
			OutlierDetection: &cluster.OutlierDetection{SuccessRateStdevFactor: wrapperspb.UInt32(1900)}}}}, "success-rate"},
		{"two circuit breaker priorities", config{clusters: map[string]*cluster.Cluster{"c": {Name: "c", ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_STATIC},
			CircuitBreakers: &cluster.CircuitBreakers{Thresholds: []*cluster.CircuitBreakers_Thresholds{{}, {Priority: 1}}}}}}, "circuit_breakers"},
		{"bad regex", config{routes: map[string]*route.RouteConfiguration{"r": {Name: "r", VirtualHosts: []*route.VirtualHost{{
			Name: "v", Domains: []string{"*"}, Routes: []*route.Route{{Match: &route.RouteMatch{
				PathSpecifier: &route.RouteMatch_SafeRegex{SafeRegex: &matcher.RegexMatcher{Regex: "(("}}}, Action: clusterAction("c")}}}}}}}, "safe_regex"},
	}...)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := compile(&tc.cfg, &state{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error mentioning %q", err, tc.want)
			}
		})
	}
}

func sock(ip string, port uint32) *core.Address {
	return &core.Address{Address: &core.Address_SocketAddress{SocketAddress: &core.SocketAddress{Address: ip, PortSpecifier: &core.SocketAddress_PortValue{PortValue: port}}}}
}

func mustAny(t testing.TB, m proto.Message) *anypb.Any {
	t.Helper()
	a, err := anypb.New(m)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestHeaderAndDomainMatchers(t *testing.T) {
	hdr := func(name string, hm *route.HeaderMatcher) *route.Route {
		r := prefixRoute(name, "/", name)
		r.Match.Headers = []*route.HeaderMatcher{hm}
		return r
	}
	rc := &route.RouteConfiguration{Name: "r", VirtualHosts: []*route.VirtualHost{
		{Name: "h", Domains: []string{"h"}, Routes: []*route.Route{
			hdr("suffix", &route.HeaderMatcher{Name: "x-a", HeaderMatchSpecifier: &route.HeaderMatcher_SuffixMatch{SuffixMatch: "-end"}}),
			hdr("regex", &route.HeaderMatcher{Name: "x-a", HeaderMatchSpecifier: &route.HeaderMatcher_SafeRegexMatch{SafeRegexMatch: &matcher.RegexMatcher{Regex: "[0-9]+"}}}),
			hdr("present", &route.HeaderMatcher{Name: "x-p", HeaderMatchSpecifier: &route.HeaderMatcher_PresentMatch{PresentMatch: true}}),
			hdr("not-beta", &route.HeaderMatcher{Name: "x-b", InvertMatch: true, HeaderMatchSpecifier: &route.HeaderMatcher_StringMatch{
				StringMatch: &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Exact{Exact: "beta"}}}}),
			prefixRoute("fallback", "/", "fallback"),
		}},
		{Name: "suffix-wild", Domains: []string{"*.example.com"}, Routes: []*route.Route{prefixRoute("s", "/", "suffix-wild")}},
		{Name: "longer-suffix-wild", Domains: []string{"*.api.example.com"}, Routes: []*route.Route{prefixRoute("s", "/", "longer-suffix-wild")}},
		{Name: "prefix-wild", Domains: []string{"foo.*"}, Routes: []*route.Route{prefixRoute("p", "/", "prefix-wild")}},
		{Name: "star", Domains: []string{"*"}, Routes: []*route.Route{prefixRoute("any", "/", "star")}},
	}}
	tbl, err := compileRoutes(rc)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		host string
		hdrs map[string]string
		want string
	}{
		{"h", map[string]string{"X-A": "a-end", "X-B": "beta"}, "suffix"},
		{"h", map[string]string{"X-A": "123", "X-B": "beta"}, "regex"},
		{"h", map[string]string{"X-A": "12x", "X-P": "", "X-B": "beta"}, "present"},
		{"h", map[string]string{"X-B": "alpha"}, "not-beta"},
		{"h", map[string]string{}, "not-beta"},
		{"h", map[string]string{"X-B": "beta"}, "fallback"},
		{"a.example.com", nil, "suffix-wild"},
		{"x.api.example.com", nil, "longer-suffix-wild"},
		{".example.com", nil, "star"},
		{"foo.bar", nil, "prefix-wild"},
		{"FOO.bar", nil, "prefix-wild"},
		{"bar.foo", nil, "star"},
	}
	for _, tc := range cases {
		r := httptest.NewRequest("GET", "http://"+tc.host+"/", nil)
		for k, v := range tc.hdrs {
			r.Header.Set(k, v)
		}
		vh := tbl.vhost(tc.host)
		var got string
		if rr := vh.route((*stdRequest)(r)); rr != nil {
			got = rr.cluster()
		}
		if got != tc.want {
			t.Errorf("%s %v: got %q, want %q", tc.host, tc.hdrs, got, tc.want)
		}
	}
}

// TestRouteDecorator: a route's decorator operation names its spans.
func TestRouteDecorator(t *testing.T) {
	r := &route.Route{Match: &route.RouteMatch{PathSpecifier: &route.RouteMatch_Path{Path: "/productpage"}},
		Decorator: &route.Decorator{Operation: "productpage.default.svc.cluster.local:9080/productpage"},
		Action:    clusterAction("outbound|9080||productpage.default.svc.cluster.local")}
	rr, err := compileRoute(r)
	if err != nil {
		t.Fatal(err)
	}
	if rr.operation != "productpage.default.svc.cluster.local:9080/productpage" {
		t.Errorf("operation %q", rr.operation)
	}
	r.Decorator = nil
	if rr, err = compileRoute(r); err != nil || rr.operation != "" {
		t.Errorf("no decorator: operation %q, err %v", rr.operation, err)
	}
}
