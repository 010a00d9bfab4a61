package translate

import (
	"fmt"
	"sort"
	"strings"

	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
	networking "istio.io/api/networking/v1alpha3"

	"github.com/weft-mesh/weft/internal/config"
	"github.com/weft-mesh/weft/internal/controlplane/registry"
)

// gateway builds a router's listeners and routes from the Gateways that select it.
func (b *builder) gateway() {
	byPort := map[uint32][]string{} // port -> gateway keys "ns/name"
	tcpPorts := map[uint32]bool{}   // ports whose servers are TCP
	tlsPorts := map[uint32]bool{}   // ports whose servers pass TLS through by SNI
	for _, o := range b.gws {
		gw := o.Spec.(*networking.Gateway)
		if !registry.Matches(gw.GetSelector(), b.in.Proxy.Labels) {
			continue
		}
		for _, s := range gw.GetServers() {
			for _, u := range config.UnimplementedServer(s) {
				b.warn(o, u.Path, u.Reason)
			}
			if !config.ServerImplemented(s) {
				continue
			}
			p := s.GetPort().GetNumber()
			byPort[p] = append(byPort[p], o.Namespace+"/"+o.Name)
			switch proto := strings.ToUpper(s.GetPort().GetProtocol()); {
			case s.GetTls() != nil && s.GetTls().GetMode() == networking.ServerTLSSettings_PASSTHROUGH:
				tlsPorts[p] = true
			case !config.IsHTTPProtocol(proto):
				tcpPorts[p] = true
			}
		}
	}
	ports := make([]uint32, 0, len(byPort))
	for p := range byPort {
		ports = append(ports, p)
	}
	sort.Slice(ports, func(i, j int) bool { return ports[i] < ports[j] })
	for _, p := range ports {
		if tlsPorts[p] {
			b.gatewayTLS(p, byPort[p])
			continue
		}
		if tcpPorts[p] {
			b.gatewayTCP(p, byPort[p])
			continue
		}
		name := GatewayRouteName(p)
		b.out.Listeners = append(b.out.Listeners, &listener.Listener{
			Name:         ListenerName(p),
			Address:      socketAddress("0.0.0.0", p),
			FilterChains: []*listener.FilterChain{b.httpChain(name, rdsManager(name))},
		})
		b.out.Routes = append(b.out.Routes, b.gatewayRoutes(p, byPort[p]))
	}
}

// gatewayRoutes builds http.PORT: a virtual host per host of the VirtualServices bound to the gateways.
func (b *builder) gatewayRoutes(port uint32, gateways []string) *route.RouteConfiguration {
	rc := &route.RouteConfiguration{Name: GatewayRouteName(port), ValidateClusters: wrapperspb.Bool(false)}
	hosts := map[string]*route.VirtualHost{}
	var order []string
	for _, o := range b.vs {
		vs := o.Spec.(*networking.VirtualService)
		if !boundTo(vs.GetGateways(), o.Namespace, gateways) {
			continue
		}
		routes := b.httpRoutes(o, port, nil, gateways)
		for _, h := range vs.GetHosts() {
			vh := hosts[h]
			if vh == nil {
				vh = &route.VirtualHost{Name: fmt.Sprintf("%s:%d", h, port), Domains: []string{h}, IncludeRequestAttemptCount: true}
				if h != "*" {
					vh.Domains = append(vh.Domains, fmt.Sprintf("%s:%d", h, port))
				}
				hosts[h] = vh
				order = append(order, h)
			}
			vh.Routes = append(vh.Routes, routes...)
		}
	}
	sort.Strings(order)
	for _, h := range order {
		rc.VirtualHosts = append(rc.VirtualHosts, hosts[h])
	}
	return rc
}

// boundTo reports whether a VirtualService's gateways name one of gateways ("ns/name").
func boundTo(vsGateways []string, vsNamespace string, gateways []string) bool {
	for _, g := range vsGateways {
		if g == "mesh" {
			continue
		}
		if !strings.Contains(g, "/") {
			g = vsNamespace + "/" + g
		}
		for _, want := range gateways {
			if g == want {
				return true
			}
		}
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// gatewayTCP builds a gateway's TCP listener: the first tcp route of the
// VirtualServices bound to its Gateways that matches the port.
func (b *builder) gatewayTCP(port uint32, gateways []string) {
	l := &listener.Listener{Name: ListenerName(port), Address: socketAddress("0.0.0.0", port)}
	if o, tr := b.tcpRoute("", port, gateways); tr != nil {
		l.FilterChains = []*listener.FilterChain{b.tcpRouteChain(o, tr, port)}
	} else {
		l.FilterChains = []*listener.FilterChain{tcpChain(BlackHoleCluster, BlackHoleCluster)}
	}
	b.out.Listeners = append(b.out.Listeners, l)
}
