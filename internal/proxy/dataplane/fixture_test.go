package dataplane

import (
	"context"
	"fmt"
	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	fileal "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/file/v3"
	weftconfig "github.com/weft-mesh/weft/internal/config"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	routerfilter "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcpproxy "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	ppts "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/proxy_protocol/v3"
	rawbuf "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/raw_buffer/v3"
	upstreamhttp "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Fixed ports on random loopback IPs, as the sidecars use them.
const (
	testOutbound = 15001
	testInbound  = 15006
)

// randIP returns a random 127.X.Y.Z address.
func randIP() netip.Addr {
	return netip.AddrFrom4([4]byte{127, byte(1 + rand.IntN(250)), byte(1 + rand.IntN(250)), byte(2 + rand.IntN(250))})
}

// startApp serves h on ip:0 and returns its address.
func startApp(t testing.TB, ip netip.Addr, h http.Handler) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", netip.AddrPortFrom(ip, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	p := new(http.Protocols)
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: h, Protocols: p}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return netip.MustParseAddrPort(ln.Addr().String())
}

// newTestDataplane starts a data plane on ip and shuts it down at test end.
func newTestDataplane(t testing.TB, mode string, ip netip.Addr) *Dataplane {
	t.Helper()
	return newTestDataplaneTel(t, mode, ip, Telemetry{})
}

// newTestDataplaneTel is newTestDataplane reporting to tel.
func newTestDataplaneTel(t testing.TB, mode string, ip netip.Addr, tel Telemetry) *Dataplane {
	t.Helper()
	d, err := New(Options{Mode: mode, IP: ip, OutboundPort: testOutbound, InboundPort: testInbound,
		DrainTime: 5 * time.Second, Telemetry: tel, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = d.Shutdown(ctx)
	})
	return d
}

// apply sends one complete set of resources of a type and fails on NACK.
func apply(t testing.TB, d *Dataplane, typeURL string, res ...proto.Message) {
	t.Helper()
	if err := d.Update(typeURL, "v1", named(res...)); err != nil {
		t.Fatalf("Update %s: %v", typeURL, err)
	}
}

func named(res ...proto.Message) map[string]proto.Message {
	out := map[string]proto.Message{}
	for _, r := range res {
		switch m := r.(type) {
		case *listener.Listener:
			out[m.GetName()] = m
		case *route.RouteConfiguration:
			out[m.GetName()] = m
		case *cluster.Cluster:
			out[m.GetName()] = m
		case *endpoint.ClusterLoadAssignment:
			out[m.GetClusterName()] = m
		}
	}
	return out
}

func sockAP(ap netip.AddrPort) *core.Address { return sock(ap.Addr().String(), uint32(ap.Port())) }

func filter(t testing.TB, name string, m proto.Message) *listener.Filter {
	return &listener.Filter{Name: name, ConfigType: &listener.Filter_TypedConfig{TypedConfig: mustAny(t, m)}}
}

func tcpChain(t testing.TB, clusterName string) *listener.FilterChain {
	return &listener.FilterChain{Filters: []*listener.Filter{filter(t, "envoy.filters.network.tcp_proxy",
		&tcpproxy.TcpProxy{StatPrefix: clusterName, ClusterSpecifier: &tcpproxy.TcpProxy_Cluster{Cluster: clusterName}})}}
}

func hcmChain(t testing.TB, m *hcm.HttpConnectionManager) *listener.FilterChain {
	m.StatPrefix = "http"
	m.AccessLog = []*accesslogv3.AccessLog{istioAccessLog(t)}
	m.HttpFilters = []*hcm.HttpFilter{{Name: "envoy.filters.http.router",
		ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: mustAny(t, &routerfilter.Router{})}}}
	return &listener.FilterChain{Filters: []*listener.Filter{filter(t, "envoy.filters.network.http_connection_manager", m)}}
}

// outboundListener is virtualOutbound on ip:15001.
func outboundListener(t testing.TB, ip netip.Addr) *listener.Listener {
	return &listener.Listener{Name: "virtualOutbound", Address: sock(ip.String(), testOutbound),
		UseOriginalDst: wrapperspb.Bool(true), FilterChains: []*listener.FilterChain{tcpChain(t, "PassthroughCluster")}}
}

// httpListener is 0.0.0.0_PORT with RDS route config rds.
func httpListener(t testing.TB, port uint16, rds string, bind bool) *listener.Listener {
	return &listener.Listener{Name: fmt.Sprintf("0.0.0.0_%d", port), Address: sock("0.0.0.0", uint32(port)),
		BindToPort: wrapperspb.Bool(bind),
		FilterChains: []*listener.FilterChain{hcmChain(t, &hcm.HttpConnectionManager{
			RouteSpecifier: &hcm.HttpConnectionManager_Rds{Rds: &hcm.Rds{RouteConfigName: rds,
				ConfigSource: &core.ConfigSource{ConfigSourceSpecifier: &core.ConfigSource_Ads{Ads: &core.AggregatedConfigSource{}}}}},
		})}}
}

// inboundListener is virtualInbound on ip:15006 with an HTTP chain per app port.
func inboundListener(t testing.TB, ip netip.Addr, ports ...uint16) *listener.Listener {
	l := &listener.Listener{Name: "virtualInbound", Address: sock(ip.String(), testInbound),
		ListenerFilters: []*listener.ListenerFilter{{Name: "envoy.filters.listener.proxy_protocol"}}}
	for _, p := range ports {
		name := fmt.Sprintf("inbound|%d||", p)
		fc := hcmChain(t, &hcm.HttpConnectionManager{RouteSpecifier: &hcm.HttpConnectionManager_RouteConfig{
			RouteConfig: &route.RouteConfiguration{Name: name, VirtualHosts: []*route.VirtualHost{{
				Name: fmt.Sprintf("inbound|http|%d", p), Domains: []string{"*"},
				Routes: []*route.Route{prefixRoute("default", "/", name)}}}}}})
		fc.FilterChainMatch = &listener.FilterChainMatch{DestinationPort: wrapperspb.UInt32(uint32(p))}
		l.FilterChains = append(l.FilterChains, fc)
	}
	return l
}

func prefixRoute(name, prefix, clusterName string) *route.Route {
	return &route.Route{Name: name, Match: &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: prefix}},
		Action: clusterAction(clusterName)}
}

// edsCluster is an outbound EDS cluster with Istio's transport socket matches.
func edsCluster(t testing.TB, name string, h2 bool) *cluster.Cluster {
	c := &cluster.Cluster{Name: name, ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_EDS},
		EdsClusterConfig: &cluster.Cluster_EdsClusterConfig{ServiceName: name,
			EdsConfig: &core.ConfigSource{ConfigSourceSpecifier: &core.ConfigSource_Ads{Ads: &core.AggregatedConfigSource{}}}},
		ConnectTimeout: durationpb.New(2 * time.Second),
		TransportSocketMatches: []*cluster.Cluster_TransportSocketMatch{
			{Name: "tlsMode-istio", Match: &structpb.Struct{Fields: map[string]*structpb.Value{"tlsMode": structpb.NewStringValue("istio")}},
				TransportSocket: &core.TransportSocket{Name: "envoy.transport_sockets.upstream_proxy_protocol",
					ConfigType: &core.TransportSocket_TypedConfig{TypedConfig: mustAny(t, &ppts.ProxyProtocolUpstreamTransport{
						Config: &core.ProxyProtocolConfig{Version: core.ProxyProtocolConfig_V2},
						TransportSocket: &core.TransportSocket{Name: "envoy.transport_sockets.raw_buffer",
							ConfigType: &core.TransportSocket_TypedConfig{TypedConfig: mustAny(t, &rawbuf.RawBuffer{})}}})}}},
			{Name: "tlsMode-disabled", Match: &structpb.Struct{},
				TransportSocket: &core.TransportSocket{Name: "envoy.transport_sockets.raw_buffer",
					ConfigType: &core.TransportSocket_TypedConfig{TypedConfig: mustAny(t, &rawbuf.RawBuffer{})}}},
		}}
	if h2 {
		setH2(t, c)
	}
	return c
}

func setH2(t testing.TB, c *cluster.Cluster) {
	c.TypedExtensionProtocolOptions = map[string]*anypb.Any{"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": mustAny(t,
		&upstreamhttp.HttpProtocolOptions{UpstreamProtocolOptions: &upstreamhttp.HttpProtocolOptions_ExplicitHttpConfig_{
			ExplicitHttpConfig: &upstreamhttp.HttpProtocolOptions_ExplicitHttpConfig{
				ProtocolConfig: &upstreamhttp.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{
					Http2ProtocolOptions: &core.Http2ProtocolOptions{}}}}})}
}

// staticCluster is an inbound-style STATIC cluster to addr.
func staticCluster(t testing.TB, name string, addr netip.AddrPort, h2 bool) *cluster.Cluster {
	c := &cluster.Cluster{Name: name, ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_STATIC},
		ConnectTimeout: durationpb.New(2 * time.Second),
		LoadAssignment: cla(name, false, addr)}
	if h2 {
		setH2(t, c)
	}
	return c
}

func specialClusters() []proto.Message {
	return []proto.Message{
		&cluster.Cluster{Name: "PassthroughCluster", ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_ORIGINAL_DST},
			LbPolicy: cluster.Cluster_CLUSTER_PROVIDED, ConnectTimeout: durationpb.New(2 * time.Second)},
		&cluster.Cluster{Name: "BlackHoleCluster", ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_STATIC},
			ConnectTimeout: durationpb.New(2 * time.Second)},
	}
}

// cla is a ClusterLoadAssignment; sidecar marks endpoints tlsMode=istio.
func cla(name string, sidecar bool, addrs ...netip.AddrPort) *endpoint.ClusterLoadAssignment {
	loc := &endpoint.LocalityLbEndpoints{}
	for _, a := range addrs {
		lbe := &endpoint.LbEndpoint{HealthStatus: core.HealthStatus_HEALTHY, LoadBalancingWeight: wrapperspb.UInt32(1),
			HostIdentifier: &endpoint.LbEndpoint_Endpoint{Endpoint: &endpoint.Endpoint{Address: sockAP(a)}}}
		if sidecar {
			lbe.Metadata = &core.Metadata{FilterMetadata: map[string]*structpb.Struct{"envoy.transport_socket_match": {
				Fields: map[string]*structpb.Value{"tlsMode": structpb.NewStringValue("istio")}},
				"istio": {Fields: map[string]*structpb.Value{"workload": structpb.NewStringValue("reviews-v1-1;default;reviews;v1;")}}}}
		}
		loc.LbEndpoints = append(loc.LbEndpoints, lbe)
	}
	return &endpoint.ClusterLoadAssignment{ClusterName: name, Endpoints: []*endpoint.LocalityLbEndpoints{loc}}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// istioAccessLog is the file access log translate sends: Istio's JSON format to /dev/stdout.
func istioAccessLog(t testing.TB) *accesslogv3.AccessLog {
	fields := map[string]*structpb.Value{}
	for _, kv := range weftconfig.IstioAccessLogFormat {
		fields[kv[0]] = structpb.NewStringValue(kv[1])
	}
	return &accesslogv3.AccessLog{Name: "envoy.access_loggers.file", ConfigType: &accesslogv3.AccessLog_TypedConfig{TypedConfig: mustAny(t, &fileal.FileAccessLog{
		Path: "/dev/stdout", AccessLogFormat: &fileal.FileAccessLog_LogFormat{LogFormat: &core.SubstitutionFormatString{
			Format: &core.SubstitutionFormatString_JsonFormat{JsonFormat: &structpb.Struct{Fields: fields}}}}})}}
}
