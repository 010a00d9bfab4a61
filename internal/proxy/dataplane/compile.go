package dataplane

import (
	"fmt"
	"net/netip"
	"net/textproto"
	"regexp"
	"sort"
	"strings"
	"time"

	xdstype "github.com/cncf/xds/go/xds/type/v3"
	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
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
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
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
	c := &rchain{dstPort: fc.GetFilterChainMatch().GetDestinationPort().GetValue(), serverNames: fc.GetFilterChainMatch().GetServerNames()}
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
	rest.DestinationPort, rest.ServerNames = nil, nil
	if rest.TransportProtocol == "tls" || rest.TransportProtocol == "raw_buffer" {
		rest.TransportProtocol = ""
	}
	if !proto.Equal(rest, &listener.FilterChainMatch{}) {
		return fmt.Errorf("filter_chain_match: only destination_port and server_names are supported by weft proxy, got %v", rest)
	}
	return nil
}

func compileHCM(c *rchain, m *hcm.HttpConnectionManager, where string, st *state) error {
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

// compileRoutes compiles a route configuration whose rate limit buckets
// live on their own (tests and benchmarks).
func compileRoutes(rc *route.RouteConfiguration) (*rtable, error) {
	return compileRoutesIn(rc, &state{})
}

// compileRoutesIn compiles a route configuration; st keeps its rate limit
// buckets across config updates.
func compileRoutesIn(rc *route.RouteConfiguration, st *state) (*rtable, error) {
	t := &rtable{name: rc.GetName(), exact: map[string]*rvhost{}}
	for i, vh := range rc.GetVirtualHosts() {
		v := &rvhost{name: vh.GetName()}
		for j, r := range vh.GetRoutes() {
			rr, err := compileRoute(r)
			if err == nil && rr.retry == nil && r.GetRoute() != nil && r.GetRoute().GetRetryPolicy() == nil {
				rr.retry, err = compileRetry(vh.GetRetryPolicy())
			}
			if err != nil {
				return nil, fmt.Errorf("virtual_hosts[%d] %q: routes[%d] %q: %w", i, vh.GetName(), j, r.GetName(), err)
			}
			rr.attemptCount = vh.GetIncludeRequestAttemptCount()
			if err := compileRouteRateLimit(rr, rc.GetName(), vh, r, st); err != nil {
				return nil, fmt.Errorf("virtual_hosts[%d] %q: routes[%d] %q: %w", i, vh.GetName(), j, r.GetName(), err)
			}
			v.routes = append(v.routes, rr)
		}
		for _, d := range vh.GetDomains() {
			d = strings.ToLower(d)
			switch {
			case d == "*":
				if t.star == nil {
					t.star = v
				}
			case strings.HasPrefix(d, "*"):
				t.suffix = append(t.suffix, wildDomain{part: d[1:], vh: v})
			case strings.HasSuffix(d, "*"):
				t.prefix = append(t.prefix, wildDomain{part: d[:len(d)-1], vh: v})
			default:
				if _, dup := t.exact[d]; !dup {
					t.exact[d] = v
				}
			}
		}
	}
	// Longest wildcard wins, as in Envoy.
	sort.SliceStable(t.suffix, func(i, j int) bool { return len(t.suffix[i].part) > len(t.suffix[j].part) })
	sort.SliceStable(t.prefix, func(i, j int) bool { return len(t.prefix[i].part) > len(t.prefix[j].part) })
	return t, nil
}

func compileRoute(r *route.Route) (*rroute, error) {
	out := &rroute{name: r.GetName(), caseSensitive: r.GetMatch().GetCaseSensitive() == nil || r.GetMatch().GetCaseSensitive().GetValue()}
	m := r.GetMatch()
	switch {
	case m.GetGrpc() != nil:
		return nil, fmt.Errorf("match.grpc is not supported by weft proxy")
	case m.GetRuntimeFraction() != nil:
		return nil, fmt.Errorf("match.runtime_fraction is not supported by weft proxy")
	case m.GetTlsContext() != nil:
		return nil, fmt.Errorf("match.tls_context is not supported by weft proxy")
	case len(m.GetDynamicMetadata()) > 0:
		return nil, fmt.Errorf("match.dynamic_metadata is not supported by weft proxy")
	}
	switch p := m.GetPathSpecifier().(type) {
	case *route.RouteMatch_Prefix:
		out.prefix = p.Prefix
	case *route.RouteMatch_Path:
		out.path = p.Path
	case *route.RouteMatch_SafeRegex:
		re, err := compileRegex(p.SafeRegex.GetRegex())
		if err != nil {
			return nil, fmt.Errorf("match.safe_regex: %w", err)
		}
		out.regex = re
	default:
		return nil, fmt.Errorf("match: path specifier %T is not supported", p)
	}
	hms, err := compileHeaderMatchers(m.GetHeaders())
	if err != nil {
		return nil, err
	}
	out.headers = hms
	for _, q := range m.GetQueryParameters() {
		qm := queryMatch{name: q.GetName()}
		if q.GetStringMatch() != nil {
			sm, err := compileString(q.GetStringMatch())
			if err != nil {
				return nil, fmt.Errorf("match.query_parameters %q: %w", q.GetName(), err)
			}
			qm.str = sm
		}
		out.query = append(out.query, qm)
	}
	return out, compileAction(out, r)
}

// defaultRouteTimeout is Envoy's route timeout when a route sets none.
const defaultRouteTimeout = 15 * time.Second

func compileAction(out *rroute, r *route.Route) error {
	if dr := r.GetDirectResponse(); dr != nil {
		return compileDirect(out, r, dr)
	}
	if rd := r.GetRedirect(); rd != nil {
		return compileRedirect(out, r, rd)
	}
	ra := r.GetRoute()
	if ra == nil {
		return fmt.Errorf("action %s is not supported by weft proxy (only route, redirect and direct_response)", actionName(r))
	}
	var err error
	if out.hash, err = compileHashPolicy(ra); err != nil {
		return err
	}
	f, err := compileFault(r)
	if err != nil {
		return err
	}
	out.fault = f
	if out.retry, err = compileRetry(ra.GetRetryPolicy()); err != nil {
		return err
	}
	if out.mirrors, err = compileMirrors(ra); err != nil {
		return err
	}
	if out.cors, err = compileCORS(r); err != nil {
		return err
	}
	if err := compileRouteHeaders(out, r); err != nil {
		return err
	}
	if err := compileRewrite(out, ra); err != nil {
		return err
	}
	// Envoy's default route timeout is 15 s; an explicit 0 disables it (Istio's default).
	out.timeout = defaultRouteTimeout
	if t := ra.GetTimeout(); t != nil {
		if err := t.CheckValid(); err != nil || t.AsDuration() < 0 {
			return fmt.Errorf("route.timeout: invalid duration")
		}
		out.timeout = t.AsDuration()
	}
	switch cs := ra.GetClusterSpecifier().(type) {
	case *route.RouteAction_Cluster:
		out.clusters = []weighted{{name: cs.Cluster, weight: 1}}
	case *route.RouteAction_WeightedClusters:
		for _, c := range cs.WeightedClusters.GetClusters() {
			w := weighted{name: c.GetName(), weight: c.GetWeight().GetValue()}
			var err error
			if w.reqHeaders, err = compileHeaders("weighted_clusters.request_headers_to_add", c.GetRequestHeadersToAdd(), c.GetRequestHeadersToRemove()); err != nil {
				return err
			}
			if w.respHeaders, err = compileHeaders("weighted_clusters.response_headers_to_add", c.GetResponseHeadersToAdd(), c.GetResponseHeadersToRemove()); err != nil {
				return err
			}
			out.clusters = append(out.clusters, w)
			out.total += w.weight
		}
		if len(out.clusters) == 0 {
			return fmt.Errorf("weighted_clusters: empty")
		}
	default:
		return fmt.Errorf("route action: cluster specifier %T is not supported", cs)
	}
	return nil
}

// actionName is the proto field name of a route's action.
func actionName(r *route.Route) string {
	switch r.GetAction().(type) {
	case *route.Route_Redirect:
		return "redirect"
	case *route.Route_DirectResponse:
		return "direct_response"
	case *route.Route_FilterAction:
		return "filter_action"
	case *route.Route_NonForwardingAction:
		return "non_forwarding_action"
	case nil:
		return "(none)"
	}
	return fmt.Sprintf("%T", r.GetAction())
}

// compileRegex compiles an RE2 regex that must match the whole input, as
// Envoy's safe_regex does (Go's regexp is RE2).
func compileRegex(expr string) (*regexp.Regexp, error) {
	re, err := regexp.Compile("^(?:" + expr + ")$")
	if err != nil {
		return nil, fmt.Errorf("regex %q: %w", expr, err)
	}
	return re, nil
}

func compileString(sm *matcher.StringMatcher) (*stringMatch, error) {
	out := &stringMatch{ignoreCase: sm.GetIgnoreCase()}
	low := func(s string) string {
		if out.ignoreCase {
			return strings.ToLower(s)
		}
		return s
	}
	switch p := sm.GetMatchPattern().(type) {
	case *matcher.StringMatcher_Exact:
		out.kind, out.exact = 'e', low(p.Exact)
	case *matcher.StringMatcher_Prefix:
		out.kind, out.prefix = 'p', low(p.Prefix)
	case *matcher.StringMatcher_Suffix:
		out.kind, out.suffix = 's', low(p.Suffix)
	case *matcher.StringMatcher_Contains:
		out.kind, out.contains = 'c', low(p.Contains)
	case *matcher.StringMatcher_SafeRegex:
		re, err := compileRegex(p.SafeRegex.GetRegex())
		if err != nil {
			return nil, fmt.Errorf("safe_regex: %w", err)
		}
		out.kind, out.regex = 'r', re
	default:
		return nil, fmt.Errorf("string match %T is not supported", p)
	}
	return out, nil
}

// compileDirect reads a direct_response action: a status and an inline body.
func compileDirect(out *rroute, r *route.Route, dr *route.DirectResponseAction) error {
	if dr.GetStatus() < 200 || dr.GetStatus() >= 600 {
		return fmt.Errorf("direct_response.status %d: want 200-599", dr.GetStatus())
	}
	body := dr.GetBody()
	switch body.GetSpecifier().(type) {
	case nil, *core.DataSource_InlineString, *core.DataSource_InlineBytes:
	default:
		return fmt.Errorf("direct_response.body: only inline_string and inline_bytes are supported")
	}
	text := body.GetInlineString()
	if b := body.GetInlineBytes(); b != nil {
		text = string(b)
	}
	out.direct = &directResponse{status: int(dr.GetStatus()), body: text}
	f, err := compileFault(r)
	if err != nil {
		return err
	}
	out.fault = f
	return compileRouteHeaders(out, r)
}

// compileHeaderMatchers compiles route header matchers.
func compileHeaderMatchers(hs []*route.HeaderMatcher) ([]headerMatch, error) {
	var out []headerMatch
	for _, h := range hs {
		hm := headerMatch{name: strings.ToLower(h.GetName()), canon: textproto.CanonicalMIMEHeaderKey(h.GetName()), invert: h.GetInvertMatch()}
		switch s := h.GetHeaderMatchSpecifier().(type) {
		case *route.HeaderMatcher_PresentMatch:
			hm.present = s.PresentMatch
		case *route.HeaderMatcher_StringMatch:
			sm, err := compileString(s.StringMatch)
			if err != nil {
				return nil, fmt.Errorf("match.headers %q: %w", h.GetName(), err)
			}
			hm.str = sm
		case *route.HeaderMatcher_ExactMatch:
			hm.str = &stringMatch{kind: 'e', exact: s.ExactMatch}
		case *route.HeaderMatcher_PrefixMatch:
			hm.str = &stringMatch{kind: 'p', prefix: s.PrefixMatch}
		case *route.HeaderMatcher_SuffixMatch:
			hm.str = &stringMatch{kind: 's', suffix: s.SuffixMatch}
		case *route.HeaderMatcher_ContainsMatch:
			hm.str = &stringMatch{kind: 'c', contains: s.ContainsMatch}
		case *route.HeaderMatcher_SafeRegexMatch:
			re, err := compileRegex(s.SafeRegexMatch.GetRegex())
			if err != nil {
				return nil, fmt.Errorf("match.headers %q: safe_regex_match: %w", h.GetName(), err)
			}
			hm.str = &stringMatch{kind: 'r', regex: re}
		case nil:
			hm.present = true // no specifier: the header must be present
		default:
			return nil, fmt.Errorf("match.headers %q: %T is not supported", h.GetName(), s)
		}
		out = append(out, hm)
	}
	return out, nil
}
