package translate

import (
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tcpproxy "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"
	networking "istio.io/api/networking/v1alpha3"

	"github.com/weft-mesh/weft/internal/config"
	"github.com/weft-mesh/weft/internal/controlplane/registry"
)

// tcpRoute finds the first VirtualService tcp route for host (nil: a
// gateway's, any host) that applies on port: bound to the mesh (gateways
// nil) or to one of gateways, its match port and sourceLabels satisfied.
func (b *builder) tcpRoute(host string, port uint32, gateways []string) (*config.Object, *networking.TCPRoute) {
	for _, o := range b.vs {
		vs := o.Spec.(*networking.VirtualService)
		if gateways == nil {
			if !boundTo(vs.GetGateways(), o.Namespace, nil) && !meshBound(vs.GetGateways()) {
				continue
			}
			if !hostsInclude(vs.GetHosts(), o.Namespace, host) {
				continue
			}
		} else if !boundTo(vs.GetGateways(), o.Namespace, gateways) {
			continue
		}
		for _, tr := range vs.GetTcp() {
			if tcpMatches(tr.GetMatch(), port, b.in.Proxy.Labels, o.Namespace, gateways) {
				return o, tr
			}
		}
	}
	return nil, nil
}

func meshBound(gws []string) bool {
	if len(gws) == 0 {
		return true
	}
	for _, g := range gws {
		if g == "mesh" {
			return true
		}
	}
	return false
}

func hostsInclude(hosts []string, ns, host string) bool {
	for _, h := range hosts {
		if config.ResolveHost(h, ns) == host {
			return true
		}
	}
	return false
}

func tcpMatches(ms []*networking.L4MatchAttributes, port uint32, labels map[string]string, vsNamespace string, gateways []string) bool {
	if len(ms) == 0 {
		return true
	}
	for _, m := range ms {
		if m.GetPort() != 0 && m.GetPort() != port {
			continue
		}
		if len(m.GetSourceLabels()) > 0 && !registry.Matches(m.GetSourceLabels(), labels) {
			continue
		}
		if !matchGateways(m.GetGateways(), vsNamespace, gateways) {
			continue
		}
		return true
	}
	return false
}

// tcpRouteChain is a tcp_proxy to the route's destinations, by weight.
func (b *builder) tcpRouteChain(o *config.Object, tr *networking.TCPRoute, port uint32) *listener.FilterChain {
	var wcs []*tcpproxy.TcpProxy_WeightedCluster_ClusterWeight
	for _, d := range tr.GetRoute() {
		w := d.GetWeight()
		if len(tr.GetRoute()) == 1 && w == 0 {
			w = 100
		}
		if w == 0 {
			continue
		}
		wcs = append(wcs, &tcpproxy.TcpProxy_WeightedCluster_ClusterWeight{Name: b.destinationCluster(o, d.GetDestination(), port), Weight: uint32(w)})
	}
	if len(wcs) == 0 {
		return tcpChain(BlackHoleCluster, BlackHoleCluster)
	}
	if len(wcs) == 1 {
		return tcpChain(wcs[0].Name, wcs[0].Name)
	}
	return &listener.FilterChain{Filters: []*listener.Filter{{
		Name: wellknown.TCPProxy,
		ConfigType: &listener.Filter_TypedConfig{TypedConfig: mustAny(&tcpproxy.TcpProxy{
			StatPrefix:       wcs[0].Name,
			ClusterSpecifier: &tcpproxy.TcpProxy_WeightedClusters{WeightedClusters: &tcpproxy.TcpProxy_WeightedCluster{Clusters: wcs}},
		})},
	}}}
}

// applyTCPIdleTimeouts sets the idle_timeout of every tcp_proxy whose
// (first) cluster has a DestinationRule connectionPool.tcp.idleTimeout, as
// Istio does; unset, Envoy's default of one hour applies.
func (b *builder) applyTCPIdleTimeouts() {
	if len(b.tcpIdle) == 0 {
		return
	}
	for _, r := range b.out.Listeners {
		for _, fc := range r.(*listener.Listener).GetFilterChains() {
			for _, f := range fc.GetFilters() {
				tp := &tcpproxy.TcpProxy{}
				if !f.GetTypedConfig().MessageIs(tp) || f.GetTypedConfig().UnmarshalTo(tp) != nil {
					continue
				}
				name := tp.GetCluster()
				if wc := tp.GetWeightedClusters().GetClusters(); len(wc) > 0 {
					name = wc[0].GetName()
				}
				if t, ok := b.tcpIdle[name]; ok {
					tp.IdleTimeout = t
					f.ConfigType = &listener.Filter_TypedConfig{TypedConfig: mustAny(tp)}
				}
			}
		}
	}
}
