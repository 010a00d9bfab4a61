package explain

import (
	"strings"
	"testing"

	adminv3 "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/weft-mesh/weft/internal/xdsmeta"
)

func sockAddr(ip string, port uint32) *core.Address {
	return &core.Address{Address: &core.Address_SocketAddress{SocketAddress: &core.SocketAddress{Address: ip, PortSpecifier: &core.SocketAddress_PortValue{PortValue: port}}}}
}

func TestWalkRequest(t *testing.T) {
	vsMeta, _ := structpb.NewStruct(map[string]any{"config": "/apis/networking.istio.io/v1/namespaces/default/virtual-service/reviews"})
	rule0, _ := structpb.NewStruct(map[string]any{"rule": 0, "match": 0})
	rule1, _ := structpb.NewStruct(map[string]any{"rule": 1})
	m, err := anypb.New(&hcm.HttpConnectionManager{RouteSpecifier: &hcm.HttpConnectionManager_Rds{Rds: &hcm.Rds{RouteConfigName: "9080"}}})
	if err != nil {
		t.Fatal(err)
	}
	to := func(c string) *route.Route_Route {
		return &route.Route_Route{Route: &route.RouteAction{ClusterSpecifier: &route.RouteAction_Cluster{Cluster: c}}}
	}
	src := Config{
		Proxy: "productpage-v1-1.default",
		Listeners: []*listener.Listener{{Name: "0.0.0.0_9080", Address: sockAddr("0.0.0.0", 9080), FilterChains: []*listener.FilterChain{{
			Filters: []*listener.Filter{{Name: "hcm", ConfigType: &listener.Filter_TypedConfig{TypedConfig: m}}}}}}},
		Routes: []*route.RouteConfiguration{{Name: "9080", VirtualHosts: []*route.VirtualHost{{
			Name: "reviews:9080", Domains: []string{"reviews:9080"},
			Routes: []*route.Route{
				{Match: &route.RouteMatch{PathSpecifier: &route.RouteMatch_Path{Path: "/v4"}}, Action: to("outbound|9080|v4|reviews"), Metadata: &core.Metadata{FilterMetadata: map[string]*structpb.Struct{"istio": vsMeta, xdsmeta.RouteRuleMetadata: rule0}}},
				{Match: &route.RouteMatch{PathSpecifier: &route.RouteMatch_Path{Path: "/gone"}}, Action: to("outbound|9080|gone|reviews")},
				{Match: &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/"}}, Action: to("outbound|9080|v1|reviews"), Metadata: &core.Metadata{FilterMetadata: map[string]*structpb.Struct{"istio": vsMeta, xdsmeta.RouteRuleMetadata: rule1}}},
			},
		}}}},
		Clusters: []*cluster.Cluster{{Name: "outbound|9080|v1|reviews"}, {Name: "outbound|9080|v4|reviews"}},
		Status: &adminv3.Clusters{ClusterStatuses: []*adminv3.ClusterStatus{{Name: "outbound|9080|v1|reviews", HostStatuses: []*adminv3.HostStatus{{
			Address: sockAddr("127.0.1.4", 9080), HealthStatus: &adminv3.HostHealthStatus{EdsHealthStatus: core.HealthStatus_HEALTHY}}}}}},
	}
	dst := &Config{Proxy: "reviews-v1-1.default", Listeners: []*listener.Listener{{Name: "virtualInbound", FilterChains: []*listener.FilterChain{
		{FilterChainMatch: &listener.FilterChainMatch{DestinationPort: wrapperspb.UInt32(9080), TransportProtocol: "tls"}},
	}}}}
	dest := func(addr string) *Config {
		if addr == "127.0.1.4:9080" {
			return dst
		}
		return nil
	}
	tests := []struct {
		name     string
		req      Request
		verdict  string
		vs       string
		skipped  int
		destMode string
		rule     string
	}{
		{"routed with the destination's mode", Request{Method: "GET", Authority: "reviews:9080", Port: 9080, PathQuery: "/reviews/0"}, "routed", "VirtualService default/reviews", 2, "STRICT", "http[1]"},
		{"subset without endpoints", Request{Method: "GET", Authority: "reviews:9080", Port: 9080, PathQuery: "/v4"}, "503 UH: outbound|9080|v4|reviews has no endpoints", "VirtualService default/reviews", 0, "", "http[0].match[0]"},
		{"cluster missing", Request{Method: "GET", Authority: "reviews:9080", Port: 9080, PathQuery: "/gone"}, "503 NC: cluster outbound|9080|gone|reviews is not in the proxy's config", "", 1, "", ""},
		{"no virtual host", Request{Method: "GET", Authority: "reviews:9081", Port: 9080, PathQuery: "/"}, "404 NR: no virtual host of route config 9080 serves reviews:9081", "", 0, "", ""},
		{"no listener", Request{Method: "GET", Authority: "reviews:9081", Port: 9081, PathQuery: "/"}, "no listener of the proxy takes port 9081", "", 0, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := WalkRequest(src, tt.req, dest)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(w.Verdict, tt.verdict) {
				t.Errorf("verdict %q, want %q", w.Verdict, tt.verdict)
			}
			vs := ""
			if w.VirtualService != nil {
				vs = w.VirtualService.String()
			}
			if vs != tt.vs {
				t.Errorf("virtual service %q, want %q", vs, tt.vs)
			}
			if w.Trace != nil && len(w.Trace.Skipped) != tt.skipped {
				t.Errorf("skipped %+v, want %d", w.Trace.Skipped, tt.skipped)
			}
			if got := w.Rule.String(); got != tt.rule {
				t.Errorf("rule %q, want %q", got, tt.rule)
			}
			mode := ""
			if len(w.Destinations) > 0 {
				mode = w.Destinations[0].PeerAuthentication
			}
			if mode != tt.destMode {
				t.Errorf("destination mode %q, want %q", mode, tt.destMode)
			}
			var b strings.Builder
			w.Print(&b)
			if !strings.Contains(b.String(), tt.verdict) {
				t.Errorf("printed walk lacks the verdict:\n%s", b.String())
			}
		})
	}
}

func TestPeerAuthMode(t *testing.T) {
	chain := func(tp string) *listener.FilterChain {
		return &listener.FilterChain{FilterChainMatch: &listener.FilterChainMatch{DestinationPort: wrapperspb.UInt32(9080), TransportProtocol: tp}}
	}
	tests := []struct {
		chains []*listener.FilterChain
		want   string
	}{
		{[]*listener.FilterChain{chain("tls")}, "STRICT"},
		{[]*listener.FilterChain{chain("tls"), chain("raw_buffer")}, "PERMISSIVE"},
		{[]*listener.FilterChain{chain("raw_buffer")}, "DISABLE"},
		{nil, "unknown (no inbound chain for the port)"},
	}
	for _, tt := range tests {
		if got := PeerAuthMode([]*listener.Listener{{FilterChains: tt.chains}}, 9080); got != tt.want {
			t.Errorf("%d chains: %q, want %q", len(tt.chains), got, tt.want)
		}
	}
}
