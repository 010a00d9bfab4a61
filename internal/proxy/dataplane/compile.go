package dataplane

import (
	"fmt"
	"net/netip"
	"sort"

	xdstype "github.com/cncf/xds/go/xds/type/v3"
	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	corsfilter "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/cors/v3"
	faultfilter "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	jwtauthn "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/jwt_authn/v3"
	localrl "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/local_ratelimit/v3"
	rbacfilter "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	routerfilter "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	netrbac "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/rbac/v3"
	tcpproxy "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// config is the latest good resources of each type.
type config struct {
	listeners map[string]*listener.Listener
	routes    map[string]*route.RouteConfiguration
	clusters  map[string]*cluster.Cluster
	endpoints map[string]*endpoint.ClusterLoadAssignment
}

// compile builds a runtime from a config; stats and lbState keep endpoint
// counters and balancer positions across builds.
func compile(cfg *config, st *state) (*runtime, error) {
	rt := &runtime{}
	if err := rt.compileListeners(cfg, st); err != nil {
		return nil, err
	}
	if err := rt.compileRouteTables(cfg, st); err != nil {
		return nil, err
	}
	if err := rt.compileClusters(cfg, st); err != nil {
		return nil, err
	}
	return rt, nil
}

// recompile builds a runtime for an update of one type, reusing the parts
// of prev the update cannot change (an EDS update only rebuilds clusters).
func recompile(prev *runtime, cfg *config, st *state, typeURL string) (*runtime, error) {
	rt := *prev
	var err error
	switch typeURL {
	case listenerType:
		err = rt.compileListeners(cfg, st)
	case routeType:
		err = rt.compileRouteTables(cfg, st)
	case clusterType, endpointType:
		err = rt.compileClusters(cfg, st)
	default:
		return compile(cfg, st)
	}
	if err != nil {
		return nil, err
	}
	return &rt, nil
}

func (rt *runtime) compileListeners(cfg *config, st *state) error {
	rt.listeners, rt.byPort, rt.byAddr = map[string]*rlistener{}, map[uint32]*rlistener{}, map[netip.AddrPort]*rlistener{}
	rt.sampling, rt.registryOnly = nil, false
	for _, name := range sortedKeys(cfg.listeners) {
		l, err := compileListener(cfg.listeners[name], st)
		if err != nil {
			return fmt.Errorf("listener %q: %w", name, err)
		}
		rt.listeners[name] = l
		for _, c := range l.chains {
			if c.trace != nil && c.trace.sample != nil && rt.sampling == nil {
				rt.sampling = c.trace.sample
			}
		}
		if l.origDst {
			if c := l.chain(0); c != nil && c.tcpCluster == blackHoleCluster {
				rt.registryOnly = true
			}
		}
		if l.addr.Addr().IsUnspecified() {
			rt.byPort[uint32(l.addr.Port())] = l
		} else if !l.origDst {
			rt.byAddr[l.addr] = l
		}
	}
	return nil
}

func (rt *runtime) compileRouteTables(cfg *config, st *state) error {
	rt.routes = map[string]*rtable{}
	for _, name := range sortedKeys(cfg.routes) {
		t, err := compileRoutesIn(cfg.routes[name], st)
		if err != nil {
			return fmt.Errorf("route config %q: %w", name, err)
		}
		rt.routes[name] = t
	}
	return nil
}

func (rt *runtime) compileClusters(cfg *config, st *state) error {
	rt.clusters = map[string]*rcluster{}
	for _, name := range sortedKeys(cfg.clusters) {
		c, err := compileCluster(cfg.clusters[name], cfg.endpoints, st)
		if err != nil {
			return fmt.Errorf("cluster %q: %w", name, err)
		}
		rt.clusters[name] = c
	}
	rt.dnsHosts = dnsHosts(cfg.clusters)
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func compileListener(l *listener.Listener, st *state) (*rlistener, error) {
	sa := l.GetAddress().GetSocketAddress()
	if sa == nil {
		return nil, fmt.Errorf("address: only socket addresses are supported")
	}
	ip, err := netip.ParseAddr(sa.GetAddress())
	if err != nil {
		return nil, fmt.Errorf("address %q: %w", sa.GetAddress(), err)
	}
	out := &rlistener{
		name:    l.GetName(),
		addr:    netip.AddrPortFrom(ip, uint16(sa.GetPortValue())),
		bind:    l.GetBindToPort() == nil || l.GetBindToPort().GetValue(),
		origDst: l.GetUseOriginalDst().GetValue(),
	}
	for _, lf := range l.GetListenerFilters() {
		switch lf.GetName() {
		case "envoy.filters.listener.proxy_protocol":
			out.proxyProto = true
		case "envoy.filters.listener.original_dst":
		case "envoy.filters.listener.tls_inspector":
			out.tlsInspector = true
		case "envoy.filters.listener.http_inspector":
			out.httpInspector = true
		default:
			return nil, fmt.Errorf("listener_filters: %q is not supported by weft proxy", lf.GetName())
		}
	}
	for i, fc := range l.GetFilterChains() {
		c, err := compileChain(fc, out.name, st)
		if err != nil {
			return nil, fmt.Errorf("filter_chains[%d]: %w", i, err)
		}
		c.inbound = out.proxyProto
		out.chains = append(out.chains, c)
	}
	if fc := l.GetDefaultFilterChain(); fc != nil {
		c, err := compileChain(fc, out.name, st)
		if err != nil {
			return nil, fmt.Errorf("default_filter_chain: %w", err)
		}
		c.dstPort = 0
		c.inbound = out.proxyProto
		out.chains = append(out.chains, c)
	}
	return out, nil
}

func compileChain(fc *listener.FilterChain, listenerName string, st *state) (*rchain, error) {
	c := &rchain{dstPort: fc.GetFilterChainMatch().GetDestinationPort().GetValue(), serverNames: fc.GetFilterChainMatch().GetServerNames(),
		appProtocols: fc.GetFilterChainMatch().GetApplicationProtocols()}
	if err := onlyDestinationPort(fc.GetFilterChainMatch()); err != nil {
		return nil, err
	}
	c.transportProtocol = fc.GetFilterChainMatch().GetTransportProtocol()
	if ts := fc.GetTransportSocket(); ts != nil {
		if err := compileDownstreamMTLS(ts); err != nil {
			return nil, err
		}
		c.mtls = true
	}
	filters := fc.GetFilters()
	// Network RBAC filters (AuthorizationPolicy on TCP) come before the
	// terminal filter: they decide on the connection before any byte flows.
	for len(filters) > 1 {
		msg, err := anyOf(filters[0].GetTypedConfig())
		if err != nil {
			return nil, fmt.Errorf("filter %q: %w", filters[0].GetName(), err)
		}
		nr, ok := msg.(*netrbac.RBAC)
		if !ok {
			return nil, fmt.Errorf("filter %q: only network RBAC filters may come before the terminal filter", filters[0].GetName())
		}
		r, err := compileNetworkRBAC(nr)
		if err != nil {
			return nil, fmt.Errorf("filter %q: %w", filters[0].GetName(), err)
		}
		c.netRBAC = append(c.netRBAC, r)
		filters = filters[1:]
	}
	if len(filters) != 1 {
		return nil, fmt.Errorf("filters: want a terminal network filter (http_connection_manager or tcp_proxy), got none")
	}
	f := filters[0]
	msg, err := anyOf(f.GetTypedConfig())
	if err != nil {
		return nil, fmt.Errorf("filter %q: %w", f.GetName(), err)
	}
	switch m := msg.(type) {
	case *hcm.HttpConnectionManager:
		return c, compileHCM(c, m, fmt.Sprintf("%s|%d", listenerName, c.dstPort), st)
	case *tcpproxy.TcpProxy:
		c.tcpIdle = defaultTCPIdleTimeout
		if t := m.GetIdleTimeout(); t != nil {
			c.tcpIdle = t.AsDuration()
		}
		switch {
		case m.GetCluster() != "":
			c.tcpCluster = m.GetCluster()
		case m.GetWeightedClusters() != nil:
			for _, wc := range m.GetWeightedClusters().GetClusters() {
				c.tcpWeighted = append(c.tcpWeighted, weighted{name: wc.GetName(), weight: wc.GetWeight()})
				c.tcpTotal += wc.GetWeight()
			}
			if len(c.tcpWeighted) == 0 || c.tcpTotal == 0 {
				return nil, fmt.Errorf("tcp_proxy.weighted_clusters: empty")
			}
			c.tcpCluster = c.tcpWeighted[0].name
		default:
			return nil, fmt.Errorf("tcp_proxy: a cluster or weighted_clusters is required")
		}
		return c, nil
	}
	return nil, fmt.Errorf("network filter %q (%s) is not supported by weft proxy", f.GetName(), f.GetTypedConfig().GetTypeUrl())
}

// onlyDestinationPort refuses filter chain matches weft proxy cannot evaluate.
func onlyDestinationPort(m *listener.FilterChainMatch) error {
	if m == nil {
		return nil
	}
	rest := proto.Clone(m).(*listener.FilterChainMatch)
	rest.DestinationPort, rest.ServerNames, rest.ApplicationProtocols = nil, nil, nil
	if rest.TransportProtocol == "tls" || rest.TransportProtocol == "raw_buffer" {
		rest.TransportProtocol = ""
	}
	if !proto.Equal(rest, &listener.FilterChainMatch{}) {
		return fmt.Errorf("filter_chain_match: only destination_port, server_names, transport_protocol and application_protocols are supported by weft proxy, got %v", rest)
	}
	return nil
}

func compileHCM(c *rchain, m *hcm.HttpConnectionManager, where string, st *state) error {
	norm, err := compilePathNorm(m)
	if err != nil {
		return err
	}
	c.norm = norm
	for _, hf := range m.GetHttpFilters() {
		msg, err := anyOf(hf.GetTypedConfig())
		if err != nil {
			return fmt.Errorf("http filter %q: %w", hf.GetName(), err)
		}
		switch f := msg.(type) {
		case *xdstype.TypedStruct:
			if hf.GetName() != statsFilter {
				return fmt.Errorf("http filter %q (TypedStruct %s) is not supported by weft proxy", hf.GetName(), f.GetTypeUrl())
			}
			if err := compileStatsFilter(c, f); err != nil {
				return err
			}
		case *jwtauthn.JwtAuthentication:
			j, err := compileJWT(f)
			if err != nil {
				return fmt.Errorf("http filter %q: %w", hf.GetName(), err)
			}
			c.jwt = j
		case *rbacfilter.RBAC:
			r, err := compileRBAC(f)
			if err != nil {
				return fmt.Errorf("http filter %q: %w", hf.GetName(), err)
			}
			c.rbac = append(c.rbac, r)
		case *routerfilter.Router:
		case *corsfilter.Cors:
			c.cors = true
		case *localrl.LocalRateLimit:
			l, err := compileLocalRateLimit(f, where, st)
			if err != nil {
				return fmt.Errorf("http filter %q: %w", hf.GetName(), err)
			}
			c.ratelimit, c.ratelimitCfg = true, l
		case *faultfilter.HTTPFault:
			// Listener-wide faults are not supported: only routes' own config.
			if f.GetDelay() != nil || f.GetAbort() != nil {
				return fmt.Errorf("http filter %q: listener-wide delay/abort is not supported, only per route", hf.GetName())
			}
			c.fault = true
		default:
			return fmt.Errorf("http filter %q is not supported by weft proxy", hf.GetName())
		}
	}
	if err := compileTracing(c, m.GetTracing()); err != nil {
		return err
	}
	if err := compileAccessLogs(c, m.GetAccessLog()); err != nil {
		return err
	}
	switch {
	case m.GetRds() != nil:
		c.rdsName = m.GetRds().GetRouteConfigName()
	case m.GetRouteConfig() != nil:
		t, err := compileRoutesIn(m.GetRouteConfig(), st)
		if err != nil {
			return fmt.Errorf("route_config: %w", err)
		}
		c.inline = t
	default:
		return fmt.Errorf("http_connection_manager: needs rds or route_config")
	}
	return nil
}

func anyOf(a *anypb.Any) (proto.Message, error) {
	if a == nil {
		return nil, fmt.Errorf("typed_config missing")
	}
	m, err := a.UnmarshalNew()
	if err != nil {
		return nil, fmt.Errorf("typed_config %s: %w", a.GetTypeUrl(), err)
	}
	return m, nil
}
