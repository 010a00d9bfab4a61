package translate

import (
	"slices"
	"sort"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	corsfilter "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/cors/v3"
	faultfilter "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	routerfilter "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	ppfilter "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/proxy_protocol/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcpproxy "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/weft-mesh/weft/internal/config"
	"github.com/weft-mesh/weft/internal/controlplane/registry"
)

// sidecar builds a sidecar's listeners and routes.
func (b *builder) sidecar() {
	if b.part != partShared {
		b.out.Listeners = append(b.out.Listeners, &listener.Listener{
			Name:           VirtualOutbound,
			Address:        socketAddress(b.in.Proxy.IP, OutboundCapturePort),
			UseOriginalDst: wrapperspb.Bool(true),
			FilterChains:   []*listener.FilterChain{b.unknownDestinationChain()},
		})
	}
	if b.part != partOwn {
		for _, port := range b.servicePorts() {
			b.outboundListener(port)
		}
	}
	if b.part != partShared {
		b.inbound()
	}
}

// servicePorts lists every service port number in the registry, sorted.
func (b *builder) servicePorts() []uint32 {
	seen := map[uint32]bool{}
	var ports []uint32
	for _, s := range b.in.Registry.Services {
		for _, p := range s.Ports {
			if !seen[p.Number] {
				seen[p.Number] = true
				ports = append(ports, p.Number)
			}
		}
	}
	sort.Slice(ports, func(i, j int) bool { return ports[i] < ports[j] })
	return ports
}

// outboundListener builds 0.0.0.0_PORT and, for HTTP, its route config.
func (b *builder) outboundListener(port uint32) {
	var httpSvcs, tlsSvcs, autoSvcs []*registry.Service
	var tcpSvc *registry.Service
	for _, s := range b.in.Registry.Services {
		p := s.Port(port)
		if p == nil {
			continue
		}
		switch {
		case isTLSProtocol(p.Protocol):
			tlsSvcs = append(tlsSvcs, s)
		case config.IsHTTPProtocol(p.Protocol):
			httpSvcs = append(httpSvcs, s)
		case p.Protocol == config.ProtocolAuto:
			autoSvcs = append(autoSvcs, s)
		case tcpSvc == nil:
			tcpSvc = s
		}
	}
	l := &listener.Listener{
		Name:       ListenerName(port),
		Address:    socketAddress("0.0.0.0", port),
		BindToPort: wrapperspb.Bool(false),
	}
	switch {
	case len(httpSvcs) > 0 || len(autoSvcs) > 0:
		name := RouteName(port)
		hc := b.httpChain(name, rdsManager(name))
		l.FilterChains = []*listener.FilterChain{hc}
		b.out.Routes = append(b.out.Routes, b.outboundRoutes(port, append(slices.Clip(httpSvcs), autoSvcs...)))
		if len(autoSvcs) > 0 {
			// Istio's protocol sniffing: HTTP/1.1 and h2c take the HTTP
			// chain, anything else the first detected service's TCP chain.
			hc.FilterChainMatch = sniffedHTTP()
			l.ListenerFilters = []*listener.ListenerFilter{httpInspector()}
			l.FilterChains = append(l.FilterChains, b.outboundTCPChain(autoSvcs[0], port))
		}
	case len(tlsSvcs) > 0:
		b.sniChains(l, port, tlsSvcs)
	case tcpSvc != nil:
		l.FilterChains = []*listener.FilterChain{b.outboundTCPChain(tcpSvc, port)}
	}
	b.out.Listeners = append(b.out.Listeners, l)
}

// outboundTCPChain is the TCP chain of service s on port: its
// VirtualService's tcp route, else its cluster.
func (b *builder) outboundTCPChain(s *registry.Service, port uint32) *listener.FilterChain {
	if o, tr := b.tcpRoute(s.Hostname, port, nil); tr != nil {
		return b.tcpRouteChain(o, tr, port)
	}
	c := OutboundCluster(port, "", s.Hostname)
	return tcpChain(c, c)
}

// inbound builds virtualInbound with a chain per port of the proxy's own services.
func (b *builder) inbound() {
	ip := b.in.Proxy.IP
	l := &listener.Listener{
		Name:    VirtualInbound,
		Address: socketAddress(ip, InboundCapturePort),
		ListenerFilters: []*listener.ListenerFilter{{
			Name:       wellknown.ProxyProtocol,
			ConfigType: &listener.ListenerFilter_TypedConfig{TypedConfig: mustAny(&ppfilter.ProxyProtocol{})},
		}},
	}
	seen := map[uint32]bool{}
	sniff := false
	for _, s := range b.in.Registry.Services {
		for _, ep := range s.Endpoints {
			if !ep.Sidecar || ep.Address != ip {
				continue
			}
			for _, p := range s.Ports {
				target := ep.EndpointPort(p)
				if seen[target] {
					continue
				}
				seen[target] = true
				fc := b.inboundChain(p, target)
				if p.Protocol == config.ProtocolAuto {
					// Sniffed: HTTP/1.1 and h2c take an HTTP chain, the rest TCP.
					sniff = true
					tc := tcpChain(fc.Name, fc.Name)
					tc.Name, tc.FilterChainMatch = fc.Name, &listener.FilterChainMatch{DestinationPort: fc.FilterChainMatch.GetDestinationPort()}
					fc.FilterChainMatch.ApplicationProtocols = sniffedHTTP().ApplicationProtocols
					l.FilterChains = append(l.FilterChains, b.inboundMTLS(fc, target)...)
					l.FilterChains = append(l.FilterChains, b.inboundMTLS(tc, target)...)
					continue
				}
				l.FilterChains = append(l.FilterChains, b.inboundMTLS(fc, target)...)
			}
		}
	}
	if sniff {
		l.ListenerFilters = append(l.ListenerFilters, httpInspector())
	}
	b.out.Listeners = append(b.out.Listeners, l)
}

func (b *builder) inboundChain(p registry.Port, target uint32) *listener.FilterChain {
	name := InboundCluster(target)
	b.out.Clusters = append(b.out.Clusters, staticCluster(name, b.in.Proxy.IP, target, p.Protocol))
	var fc *listener.FilterChain
	if config.IsHTTPProtocol(p.Protocol) || p.Protocol == config.ProtocolAuto {
		rc := &route.RouteConfiguration{
			Name: name,
			VirtualHosts: []*route.VirtualHost{{
				Name:    "inbound|http|" + RouteName(target),
				Domains: []string{"*"},
				Routes: []*route.Route{{
					Name:  "default",
					Match: &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/"}},
					Action: &route.Route_Route{Route: &route.RouteAction{
						ClusterSpecifier: &route.RouteAction_Cluster{Cluster: name},
						Timeout:          durationpb.New(0),
					}},
				}},
			}},
		}
		fc = b.httpChain(name, &hcm.HttpConnectionManager_RouteConfig{RouteConfig: rc})
	} else {
		fc = tcpChain(name, name)
	}
	fc.Name = name
	fc.FilterChainMatch = &listener.FilterChainMatch{DestinationPort: wrapperspb.UInt32(target)}
	return fc
}

func rdsManager(name string) *hcm.HttpConnectionManager_Rds {
	return &hcm.HttpConnectionManager_Rds{Rds: &hcm.Rds{
		RouteConfigName: name,
		ConfigSource: &core.ConfigSource{
			ResourceApiVersion:    core.ApiVersion_V3,
			ConfigSourceSpecifier: &core.ConfigSource_Ads{Ads: &core.AggregatedConfigSource{}},
		},
	}}
}

// httpChain is a filter chain with an HTTP connection manager, its route
// config from rs, its path normalization from the mesh config.
func (b *builder) httpChain(statPrefix string, rs interface{}) *listener.FilterChain {
	m := &hcm.HttpConnectionManager{
		StatPrefix: statPrefix,
		CodecType:  hcm.HttpConnectionManager_AUTO,
		HttpFilters: []*hcm.HttpFilter{{
			Name:       CORSFilter,
			ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: mustAny(&corsfilter.Cors{})},
		}, {
			Name:       FaultFilter,
			ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: mustAny(&faultfilter.HTTPFault{})},
		}, {
			Name:       wellknown.Router,
			ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: mustAny(&routerfilter.Router{})},
		}},
	}
	setPathNormalization(m, b.in.Mesh.PathNormalization)
	switch r := rs.(type) {
	case *hcm.HttpConnectionManager_Rds:
		m.RouteSpecifier = r
	case *hcm.HttpConnectionManager_RouteConfig:
		m.RouteSpecifier = r
	}
	return &listener.FilterChain{Filters: []*listener.Filter{{
		Name:       wellknown.HTTPConnectionManager,
		ConfigType: &listener.Filter_TypedConfig{TypedConfig: mustAny(m)},
	}}}
}

func tcpChain(statPrefix, cluster string) *listener.FilterChain {
	return &listener.FilterChain{Filters: []*listener.Filter{{
		Name: wellknown.TCPProxy,
		ConfigType: &listener.Filter_TypedConfig{TypedConfig: mustAny(&tcpproxy.TcpProxy{
			StatPrefix:       statPrefix,
			ClusterSpecifier: &tcpproxy.TcpProxy_Cluster{Cluster: cluster},
		})},
	}}}
}

func socketAddress(ip string, port uint32) *core.Address {
	return &core.Address{Address: &core.Address_SocketAddress{SocketAddress: &core.SocketAddress{
		Address:       ip,
		PortSpecifier: &core.SocketAddress_PortValue{PortValue: port},
	}}}
}

// mustAny packs m deterministically (maps in a fixed order), so equal
// config gives equal bytes and the same content version.
func mustAny(m proto.Message) *anypb.Any {
	a := &anypb.Any{}
	if err := anypb.MarshalFrom(a, m, proto.MarshalOptions{Deterministic: true}); err != nil {
		panic(err) // only for messages of our own making: a bug
	}
	return a
}
