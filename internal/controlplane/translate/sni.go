package translate

import (
	"sort"
	"strings"

	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	httpinspector "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/http_inspector/v3"
	tlsinspector "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/tls_inspector/v3"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"
	networking "istio.io/api/networking/v1alpha3"

	"github.com/weft-mesh/weft/internal/config"
	"github.com/weft-mesh/weft/internal/controlplane/registry"
)

// tlsInspector reads the SNI of TLS connections for filter chain matching.
func tlsInspector() *listener.ListenerFilter {
	return &listener.ListenerFilter{Name: wellknown.TlsInspector,
		ConfigType: &listener.ListenerFilter_TypedConfig{TypedConfig: mustAny(&tlsinspector.TlsInspector{})}}
}

// httpInspector sniffs HTTP/1.1 and HTTP/2 for filter chain matching on
// ports whose protocol is detected (config.ProtocolAuto).
func httpInspector() *listener.ListenerFilter {
	return &listener.ListenerFilter{Name: wellknown.HttpInspector,
		ConfigType: &listener.ListenerFilter_TypedConfig{TypedConfig: mustAny(&httpinspector.HttpInspector{})}}
}

// sniffedHTTP is the filter chain match of the HTTP chain of a port whose
// protocol is detected: the application protocols the inspector reports.
func sniffedHTTP() *listener.FilterChainMatch {
	return &listener.FilterChainMatch{ApplicationProtocols: []string{"http/1.1", "h2c"}}
}

// isTLSProtocol: traffic on the port is TLS the proxy does not terminate.
func isTLSProtocol(p string) bool { return p == config.ProtocolTLS || p == config.ProtocolHTTPS }

// sniChains routes a TLS port of a sidecar by SNI: a chain per service
// (its host as server name, through its tls route when a VirtualService
// has one), and the default chain for unknown names.
func (b *builder) sniChains(l *listener.Listener, port uint32, svcs []*registry.Service) {
	l.ListenerFilters = []*listener.ListenerFilter{tlsInspector()}
	for _, s := range svcs {
		names := []string{s.Hostname}
		fc := (*listener.FilterChain)(nil)
		if o, tr := b.tlsRoute(s.Hostname, port, nil); tr != nil {
			fc = b.tcpRouteChain(o, &networking.TCPRoute{Route: tr.GetRoute()}, port)
			names = sniHosts(tr, o.Namespace, names)
		} else {
			c := OutboundCluster(port, "", s.Hostname)
			fc = tcpChain(c, c)
		}
		fc.FilterChainMatch = &listener.FilterChainMatch{ServerNames: names}
		l.FilterChains = append(l.FilterChains, fc)
	}
	l.DefaultFilterChain = b.unknownDestinationChain()
}

// sniHosts are the server names a tls route matches (its sniHosts, else defaults).
func sniHosts(tr *networking.TLSRoute, ns string, defaults []string) []string {
	var out []string
	for _, m := range tr.GetMatch() {
		for _, h := range m.GetSniHosts() {
			if !strings.HasPrefix(h, "*") {
				h = config.ResolveHost(h, ns)
			}
			out = append(out, h)
		}
	}
	if len(out) == 0 {
		return defaults
	}
	sort.Strings(out)
	return out
}

// tlsRoute finds the first VirtualService tls route for host (mesh) or any
// route bound to gateways, matching the port and the proxy's labels.
func (b *builder) tlsRoute(host string, port uint32, gateways []string) (*config.Object, *networking.TLSRoute) {
	for _, o := range b.vs {
		vs := o.Spec.(*networking.VirtualService)
		if gateways == nil {
			if !meshBound(vs.GetGateways()) || !hostsInclude(vs.GetHosts(), o.Namespace, host) {
				continue
			}
		} else if !boundTo(vs.GetGateways(), o.Namespace, gateways) {
			continue
		}
		for _, tr := range vs.GetTls() {
			if tlsMatches(tr.GetMatch(), port, b.in.Proxy.Labels) {
				return o, tr
			}
		}
	}
	return nil, nil
}

func tlsMatches(ms []*networking.TLSMatchAttributes, port uint32, labels map[string]string) bool {
	for _, m := range ms {
		if m.GetPort() != 0 && m.GetPort() != port {
			continue
		}
		if len(m.GetSourceLabels()) > 0 && !registry.Matches(m.GetSourceLabels(), labels) {
			continue
		}
		return true
	}
	return len(ms) == 0
}

// gatewayTLS builds a gateway's TLS PASSTHROUGH listener: a chain per tls
// route bound to its Gateways, by SNI; unknown names are refused.
func (b *builder) gatewayTLS(port uint32, gateways []string) {
	l := &listener.Listener{Name: ListenerName(port), Address: socketAddress("0.0.0.0", port),
		ListenerFilters: []*listener.ListenerFilter{tlsInspector()}}
	for _, o := range b.vs {
		vs := o.Spec.(*networking.VirtualService)
		if !boundTo(vs.GetGateways(), o.Namespace, gateways) {
			continue
		}
		for _, tr := range vs.GetTls() {
			if !tlsMatches(tr.GetMatch(), port, b.in.Proxy.Labels) {
				continue
			}
			names := sniHosts(tr, o.Namespace, nil)
			if len(names) == 0 {
				continue
			}
			fc := b.tcpRouteChain(o, &networking.TCPRoute{Route: tr.GetRoute()}, port)
			fc.FilterChainMatch = &listener.FilterChainMatch{ServerNames: names}
			l.FilterChains = append(l.FilterChains, fc)
		}
	}
	l.DefaultFilterChain = tcpChain(BlackHoleCluster, BlackHoleCluster)
	b.out.Listeners = append(b.out.Listeners, l)
}
