package translate

import (
	"fmt"
	"slices"
	"strings"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	networking "istio.io/api/networking/v1alpha3"

	"github.com/weft-mesh/weft/internal/config"
	"github.com/weft-mesh/weft/internal/controlplane/registry"
	"github.com/weft-mesh/weft/internal/xdsmeta"
)

// outboundRoutes builds route config PORT: a virtual host per service plus allow_any.
func (b *builder) outboundRoutes(port uint32, svcs []*registry.Service) *route.RouteConfiguration {
	rc := &route.RouteConfiguration{Name: RouteName(port), ValidateClusters: wrapperspb.Bool(false)}
	for _, s := range svcs {
		vh := &route.VirtualHost{
			Name:                       fmt.Sprintf("%s:%d", s.Hostname, port),
			Domains:                    domains(s.Hostname, port, b.in.Proxy.Namespace, s.Addresses),
			IncludeRequestAttemptCount: true,
		}
		if vs := b.meshVirtualService(s.Hostname); vs != nil {
			vh.Routes = b.httpRoutes(vs, port, s, nil)
		}
		if len(vh.Routes) == 0 {
			r := defaultRoute(OutboundCluster(port, "", s.Hostname))
			decorate(r, "", port)
			if dr := b.drs[s.Hostname]; dr != nil {
				r.GetRoute().HashPolicy = hashPolicyOf(effectivePolicy(dr, nil, port).GetLoadBalancer().GetConsistentHash())
			}
			vh.Routes = []*route.Route{r}
		}
		rc.VirtualHosts = append(rc.VirtualHosts, vh)
	}
	if b.outboundPolicy == RegistryOnly {
		rc.VirtualHosts = append(rc.VirtualHosts, &route.VirtualHost{Name: "block_all", Domains: []string{"*"}, Routes: []*route.Route{blockAllRoute()}})
	} else {
		rc.VirtualHosts = append(rc.VirtualHosts, &route.VirtualHost{
			Name:    "allow_any",
			Domains: []string{"*"},
			Routes:  []*route.Route{passthroughRoute()},
		})
	}
	return rc
}

// meshVirtualService returns the first mesh-bound VirtualService for host.
func (b *builder) meshVirtualService(host string) *config.Object {
	for _, o := range b.vs {
		vs := o.Spec.(*networking.VirtualService)
		if !boundToMesh(vs.GetGateways()) {
			continue
		}
		for _, h := range vs.GetHosts() {
			if config.ResolveHost(h, o.Namespace) == host {
				return o
			}
		}
	}
	return nil
}

func boundToMesh(gws []string) bool {
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

func defaultRoute(cluster string) *route.Route {
	return &route.Route{
		Name:  "default",
		Match: &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/"}},
		Action: &route.Route_Route{Route: &route.RouteAction{
			ClusterSpecifier: &route.RouteAction_Cluster{Cluster: cluster},
			Timeout:          durationpb.New(0),
			RetryPolicy:      retryPolicy(nil),
		}},
	}
}

// passthroughRoute sends everything to PassthroughCluster, with no retries.
func passthroughRoute() *route.Route {
	r := defaultRoute(PassthroughCluster)
	r.GetRoute().RetryPolicy = nil
	r.Name = "allow_any"
	return r
}

// httpRoutes translates a VirtualService's http routes for a listener port.
// svc is the service the routes are for (nil on gateways); gateways are
// the router's Gateways ("ns/name"; nil: the mesh's sidecars).
func (b *builder) httpRoutes(o *config.Object, port uint32, svc *registry.Service, gateways []string) []*route.Route {
	vs := o.Spec.(*networking.VirtualService)
	var out []*route.Route
	for i, hr := range b.expandDelegates(o, vs.GetHttp()) {
		b.warnUnsupported(o, i, hr)
		action := b.routeAction(o, hr, port)
		direct := directAction(hr.GetDirectResponse())
		redirect := redirectAction(hr.GetRedirect())
		if action == nil && direct == nil && redirect == nil {
			continue
		}
		matches := hr.GetMatch()
		if len(matches) == 0 {
			matches = []*networking.HTTPMatchRequest{{}}
		}
		for j, m := range matches {
			if m.GetPort() != 0 && m.GetPort() != port {
				continue
			}
			if !b.fromSource(m) || !matchGateways(m.GetGateways(), o.Namespace, gateways) {
				continue
			}
			r := &route.Route{
				Name:     hr.GetName(),
				Match:    routeMatch(m),
				Metadata: ruleMetadata(o, i, j, len(hr.GetMatch()) > 0),
				// Istio's fault injection and CORS, applied by those filters of every HTTP listener.
				TypedPerFilterConfig:    perFilterConfig(hr),
				RequestHeadersToAdd:     headerOptions(hr.GetHeaders().GetRequest()),
				RequestHeadersToRemove:  hr.GetHeaders().GetRequest().GetRemove(),
				ResponseHeadersToAdd:    headerOptions(hr.GetHeaders().GetResponse()),
				ResponseHeadersToRemove: hr.GetHeaders().GetResponse().GetRemove(),
			}
			switch {
			case direct != nil:
				r.Action = direct
			case redirect != nil:
				r.Action = redirect
			default:
				r.Action = action
			}
			decorate(r, o.Name, port)
			out = append(out, r)
		}
	}
	return out
}

// directAction is Istio's directResponse as Envoy's direct_response action.
func directAction(dr *networking.HTTPDirectResponse) *route.Route_DirectResponse {
	if dr == nil {
		return nil
	}
	a := &route.DirectResponseAction{Status: dr.GetStatus()}
	switch {
	case dr.GetBody().GetString_() != "":
		a.Body = &core.DataSource{Specifier: &core.DataSource_InlineString{InlineString: dr.GetBody().GetString_()}}
	case dr.GetBody().GetBytes() != nil:
		a.Body = &core.DataSource{Specifier: &core.DataSource_InlineBytes{InlineBytes: dr.GetBody().GetBytes()}}
	}
	return &route.Route_DirectResponse{DirectResponse: a}
}

// warnUnsupported reports the fields of http route i weft does not
// implement (config.UnimplementedHTTPRoute, shared with weft analyze).
func (b *builder) warnUnsupported(o *config.Object, i int, hr *networking.HTTPRoute) {
	for _, u := range config.UnimplementedHTTPRoute(i, hr) {
		b.warn(o, u.Path, u.Reason)
	}
}

// routeAction turns an http route's destinations into a cluster or weighted clusters.
func (b *builder) routeAction(o *config.Object, hr *networking.HTTPRoute, port uint32) *route.Route_Route {
	dests := hr.GetRoute()
	if len(dests) == 0 {
		return nil
	}
	var wcs []*route.WeightedCluster_ClusterWeight
	for _, d := range dests {
		w := d.GetWeight()
		if len(dests) == 1 && w == 0 {
			w = 100
		}
		if w == 0 {
			continue
		}
		wcs = append(wcs, &route.WeightedCluster_ClusterWeight{
			Name:                    b.destinationCluster(o, d.GetDestination(), port),
			Weight:                  wrapperspb.UInt32(uint32(w)),
			RequestHeadersToAdd:     headerOptions(d.GetHeaders().GetRequest()),
			RequestHeadersToRemove:  d.GetHeaders().GetRequest().GetRemove(),
			ResponseHeadersToAdd:    headerOptions(d.GetHeaders().GetResponse()),
			ResponseHeadersToRemove: d.GetHeaders().GetResponse().GetRemove(),
		})
	}
	// Istio disables Envoy's 15 s default route timeout unless the route sets one.
	ra := &route.RouteAction{Timeout: durationpb.New(hr.GetTimeout().AsDuration()), RetryPolicy: retryPolicy(hr.GetRetries()),
		RequestMirrorPolicies: b.mirrorPolicies(o, hr, port)}
	for _, d := range dests {
		if hp := b.hashPolicy(o, d.GetDestination(), port); hp != nil {
			ra.HashPolicy = hp
			break
		}
	}
	if rw := hr.GetRewrite(); rw != nil {
		ra.PrefixRewrite = rw.GetUri()
		if rr := rw.GetUriRegexRewrite(); rr != nil {
			ra.RegexRewrite = &matcher.RegexMatchAndSubstitute{Pattern: &matcher.RegexMatcher{Regex: rr.GetMatch()}, Substitution: rr.GetRewrite()}
		}
		if rw.GetAuthority() != "" {
			ra.HostRewriteSpecifier = &route.RouteAction_HostRewriteLiteral{HostRewriteLiteral: rw.GetAuthority()}
		}
	}
	if len(wcs) == 1 && wcs[0].RequestHeadersToAdd == nil && wcs[0].RequestHeadersToRemove == nil &&
		wcs[0].ResponseHeadersToAdd == nil && wcs[0].ResponseHeadersToRemove == nil {
		ra.ClusterSpecifier = &route.RouteAction_Cluster{Cluster: wcs[0].Name}
	} else {
		ra.ClusterSpecifier = &route.RouteAction_WeightedClusters{WeightedClusters: &route.WeightedCluster{Clusters: wcs}}
	}
	return &route.Route_Route{Route: ra}
}

// destinationCluster names the cluster of a VirtualService destination.
func (b *builder) destinationCluster(o *config.Object, d *networking.Destination, port uint32) string {
	host := config.ResolveHost(d.GetHost(), o.Namespace)
	p := d.GetPort().GetNumber()
	if p == 0 {
		if svc := b.in.Registry.Service(host); svc != nil && svc.Port(port) == nil && len(svc.Ports) == 1 {
			p = svc.Ports[0].Number
		} else {
			p = port
		}
	}
	if b.in.Registry.Service(host) == nil {
		b.warn(o, "destination "+d.GetHost(), "no such service in the registry; requests get 503")
	}
	return OutboundCluster(p, d.GetSubset(), host)
}

func routeMatch(m *networking.HTTPMatchRequest) *route.RouteMatch {
	rm := &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/"}}
	switch u := m.GetUri().GetMatchType().(type) {
	case *networking.StringMatch_Exact:
		rm.PathSpecifier = &route.RouteMatch_Path{Path: u.Exact}
	case *networking.StringMatch_Prefix:
		rm.PathSpecifier = &route.RouteMatch_Prefix{Prefix: u.Prefix}
	case *networking.StringMatch_Regex:
		rm.PathSpecifier = &route.RouteMatch_SafeRegex{SafeRegex: &matcher.RegexMatcher{Regex: u.Regex}}
	}
	if m.GetIgnoreUriCase() {
		rm.CaseSensitive = wrapperspb.Bool(false)
	}
	for _, name := range sortedKeys(m.GetHeaders()) {
		rm.Headers = append(rm.Headers, headerMatcher(strings.ToLower(name), m.GetHeaders()[name]))
	}
	if m.GetMethod() != nil {
		rm.Headers = append(rm.Headers, headerMatcher(":method", m.GetMethod()))
	}
	if m.GetAuthority() != nil {
		rm.Headers = append(rm.Headers, headerMatcher(":authority", m.GetAuthority()))
	}
	if m.GetScheme() != nil {
		rm.Headers = append(rm.Headers, headerMatcher(":scheme", m.GetScheme()))
	}
	for _, name := range sortedKeys(m.GetWithoutHeaders()) {
		hm := headerMatcher(strings.ToLower(name), m.GetWithoutHeaders()[name])
		hm.InvertMatch = true
		rm.Headers = append(rm.Headers, hm)
	}
	for _, name := range sortedKeys(m.GetQueryParams()) {
		rm.QueryParameters = append(rm.QueryParameters, &route.QueryParameterMatcher{
			Name:                         name,
			QueryParameterMatchSpecifier: &route.QueryParameterMatcher_StringMatch{StringMatch: stringMatcher(m.GetQueryParams()[name])},
		})
	}
	return rm
}

func headerMatcher(name string, sm *networking.StringMatch) *route.HeaderMatcher {
	hm := &route.HeaderMatcher{Name: name}
	if sm.GetMatchType() == nil {
		hm.HeaderMatchSpecifier = &route.HeaderMatcher_PresentMatch{PresentMatch: true}
		return hm
	}
	hm.HeaderMatchSpecifier = &route.HeaderMatcher_StringMatch{StringMatch: stringMatcher(sm)}
	return hm
}

func stringMatcher(sm *networking.StringMatch) *matcher.StringMatcher {
	switch v := sm.GetMatchType().(type) {
	case *networking.StringMatch_Exact:
		return &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Exact{Exact: v.Exact}}
	case *networking.StringMatch_Prefix:
		return &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Prefix{Prefix: v.Prefix}}
	case *networking.StringMatch_Regex:
		return &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_SafeRegex{SafeRegex: &matcher.RegexMatcher{Regex: v.Regex}}}
	}
	return &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_SafeRegex{SafeRegex: &matcher.RegexMatcher{Regex: ".*"}}}
}

// headerOptions turns Istio's set (replace) and add (append) into Envoy's header options.
func headerOptions(op *networking.Headers_HeaderOperations) []*core.HeaderValueOption {
	var out []*core.HeaderValueOption
	for _, k := range sortedKeys(op.GetSet()) {
		out = append(out, &core.HeaderValueOption{Header: &core.HeaderValue{Key: k, Value: op.GetSet()[k]},
			AppendAction: core.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD})
	}
	for _, k := range sortedKeys(op.GetAdd()) {
		out = append(out, &core.HeaderValueOption{Header: &core.HeaderValue{Key: k, Value: op.GetAdd()[k]},
			AppendAction: core.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD})
	}
	return out
}

// redirectCodes maps Istio's redirectCode to Envoy's response codes.
var redirectCodes = map[uint32]route.RedirectAction_RedirectResponseCode{
	0: route.RedirectAction_MOVED_PERMANENTLY, 301: route.RedirectAction_MOVED_PERMANENTLY,
	302: route.RedirectAction_FOUND, 303: route.RedirectAction_SEE_OTHER,
	307: route.RedirectAction_TEMPORARY_REDIRECT, 308: route.RedirectAction_PERMANENT_REDIRECT,
}

// redirectAction is Istio's redirect as Envoy's redirect action.
func redirectAction(rd *networking.HTTPRedirect) *route.Route_Redirect {
	if rd == nil {
		return nil
	}
	a := &route.RedirectAction{HostRedirect: rd.GetAuthority(), PortRedirect: rd.GetPort(), ResponseCode: redirectCodes[rd.GetRedirectCode()]}
	if rd.GetUri() != "" {
		a.PathRewriteSpecifier = &route.RedirectAction_PathRedirect{PathRedirect: rd.GetUri()}
	}
	if rd.GetScheme() != "" {
		a.SchemeRewriteSpecifier = &route.RedirectAction_SchemeRedirect{SchemeRedirect: rd.GetScheme()}
	}
	return &route.Route_Redirect{Redirect: a}
}

// fromSource reports whether a match's sourceLabels and sourceNamespace
// select the proxy being built for; Istio evaluates them per proxy too.
// A gateway is selected by its own labels and namespace the same way.
// matchGateways reports whether a match's gateways (none: the
// VirtualService's) include where the routes are built: "mesh" for
// sidecars (gateways nil), else one of the router's Gateways.
func matchGateways(matchGateways []string, vsNamespace string, gateways []string) bool {
	if len(matchGateways) == 0 {
		return true
	}
	if gateways == nil {
		return slices.Contains(matchGateways, "mesh")
	}
	return boundTo(matchGateways, vsNamespace, gateways)
}

func (b *builder) fromSource(m *networking.HTTPMatchRequest) bool {
	if ns := m.GetSourceNamespace(); ns != "" && ns != b.in.Proxy.Namespace {
		return false
	}
	return registry.Matches(m.GetSourceLabels(), b.in.Proxy.Labels)
}

// ruleMetadata is configMetadata of a VirtualService's route, with the
// index of its http rule and of the match clause it came from (under
// filter_metadata weft.route), so weft explain can name them.
func ruleMetadata(o *config.Object, rule, match int, hasMatch bool) *core.Metadata {
	md := configMetadata(o, "virtual-service")
	fields := map[string]any{"rule": rule}
	if hasMatch {
		fields["match"] = match
	}
	st, _ := structpb.NewStruct(fields)
	md.FilterMetadata[xdsmeta.RouteRuleMetadata] = st
	return md
}
