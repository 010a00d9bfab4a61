package dataplane

import (
	"fmt"
	"net/textproto"
	"regexp"
	"sort"
	"strings"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
)

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
	out := &rroute{name: r.GetName(), operation: r.GetDecorator().GetOperation(),
		caseSensitive: r.GetMatch().GetCaseSensitive() == nil || r.GetMatch().GetCaseSensitive().GetValue()}
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
