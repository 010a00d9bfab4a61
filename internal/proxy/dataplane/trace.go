package dataplane

import (
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	rbacfilter "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
)

// RouteTrace is how this data plane's route matching treats a request
// under one RouteConfiguration: the virtual host it picks, the routes
// before the matching one and why they did not match, and what the
// matching one does. weft explain builds it from a proxy's config dump,
// so it is the proxy's own answer, not a second matcher's.
type RouteTrace struct {
	// VirtualHost is the virtual host the request's authority picks ("":
	// none, the proxy answers 404 NR).
	VirtualHost string `json:"virtualHost,omitempty"`
	// Skipped are the routes before the match (all of them when none
	// matches), each with why it did not match.
	Skipped []RouteMiss `json:"skipped,omitempty"`
	// Route is the matching route, nil when none matches.
	Route *RouteMatch `json:"route,omitempty"`
}

// RouteMiss is a route that did not match, and why.
type RouteMiss struct {
	Index int    `json:"index"`
	Name  string `json:"name,omitempty"`
	Why   string `json:"why"`
}

// RouteMatch is the matching route and what it does with the request.
type RouteMatch struct {
	Index int    `json:"index"`
	Name  string `json:"name,omitempty"`
	// Clusters are the route's destinations with their weights.
	Clusters []WeightedCluster `json:"clusters,omitempty"`
	// Direct is a direct response's status (0: none); Redirect is set
	// when the route redirects.
	Direct   int  `json:"directResponse,omitempty"`
	Redirect bool `json:"redirect,omitempty"`
	// Timeout bounds the exchange (0: none).
	Timeout time.Duration `json:"timeout,omitempty"`
	// Retries is how many retries the route makes, PerTryTimeout each one's bound.
	Retries       int           `json:"retries,omitempty"`
	PerTryTimeout time.Duration `json:"perTryTimeout,omitempty"`
	// Fault is the fault injection in effect ("": none).
	Fault string `json:"fault,omitempty"`
	// Mirrors are the clusters requests are shadowed to.
	Mirrors []string `json:"mirrors,omitempty"`
}

// WeightedCluster is one destination of a route.
type WeightedCluster struct {
	Name   string `json:"name"`
	Weight uint32 `json:"weight"`
}

// TraceRoute runs the data plane's route matching for a request with
// method, authority, path and query (pathQuery) and headers h.
func TraceRoute(rc *route.RouteConfiguration, method, authority, pathQuery string, h http.Header) (RouteTrace, error) {
	t, err := compileRoutes(rc)
	if err != nil {
		return RouteTrace{}, fmt.Errorf("compiling route config %q: %w", rc.GetName(), err)
	}
	u, err := url.ParseRequestURI(pathQuery)
	if err != nil {
		return RouteTrace{}, fmt.Errorf("path %q: %w", pathQuery, err)
	}
	req := &http.Request{Method: method, Host: authority, URL: u, Header: h}
	if req.Header == nil {
		req.Header = http.Header{}
	}
	r := (*stdRequest)(req)
	var out RouteTrace
	vh := t.vhost(authority)
	if vh == nil {
		return out, nil
	}
	out.VirtualHost = vh.name
	pq := r.pathQuery()
	path, query, _ := strings.Cut(pq, "?")
	if path == "" {
		path = "/"
	}
	for i, rt := range vh.routes {
		kind, j := rt.miss(r, pq, path, query)
		if kind != missNone {
			out.Skipped = append(out.Skipped, RouteMiss{Index: i, Name: rt.name, Why: rt.why(kind, j, path)})
			continue
		}
		out.Route = rt.describe(i)
		break
	}
	return out, nil
}

func (rt *rroute) why(kind, i int, path string) string {
	switch kind {
	case missHeader:
		h := rt.headers[i]
		switch {
		case h.invert:
			return fmt.Sprintf("header %s must not match %s", h.name, h.str.describe())
		case h.str == nil:
			return fmt.Sprintf("header %s is absent", h.name)
		}
		return fmt.Sprintf("header %s does not match %s", h.name, h.str.describe())
	case missQuery:
		q := rt.query[i]
		if q.str == nil {
			return fmt.Sprintf("query parameter %s is absent", q.name)
		}
		return fmt.Sprintf("query parameter %s does not match %s", q.name, q.str.describe())
	}
	switch {
	case rt.path != "":
		return fmt.Sprintf("path %s is not %s", path, rt.path)
	case rt.regex != nil:
		return fmt.Sprintf("path %s does not match regex %s", path, rt.regex)
	}
	return fmt.Sprintf("path %s does not start with %s", path, rt.prefix)
}

func (m *stringMatch) describe() string {
	if m == nil {
		return "anything"
	}
	switch m.kind {
	case 'e':
		return "exact " + m.exact
	case 'p':
		return "prefix " + m.prefix
	case 's':
		return "suffix " + m.suffix
	case 'c':
		return "contains " + m.contains
	case 'r':
		return "regex " + m.regex.String()
	}
	return "?"
}

func (rt *rroute) describe(i int) *RouteMatch {
	m := &RouteMatch{Index: i, Name: rt.name, Timeout: rt.timeout, Redirect: rt.redirect != nil}
	for _, c := range rt.clusters {
		m.Clusters = append(m.Clusters, WeightedCluster{Name: c.name, Weight: c.weight})
	}
	if rt.direct != nil {
		m.Direct = rt.direct.status
	}
	if rt.retry != nil {
		m.Retries, m.PerTryTimeout = rt.retry.retries, rt.retry.perTry
	}
	if f := rt.fault; f != nil {
		var parts []string
		if f.delay > 0 && f.delayShare > 0 {
			parts = append(parts, fmt.Sprintf("delay %s for %.4g%%", f.delay, float64(f.delayShare)/1e4))
		}
		if f.status > 0 && f.abortShare > 0 {
			parts = append(parts, fmt.Sprintf("abort %d for %.4g%%", f.status, float64(f.abortShare)/1e4))
		}
		m.Fault = strings.Join(parts, ", ")
	}
	for _, mr := range rt.mirrors {
		m.Mirrors = append(m.Mirrors, fmt.Sprintf("%s (%.4g%%)", mr.cluster, float64(mr.share)/1e4))
	}
	return m
}

// AuthzDecision is how a chain's RBAC filters decide a request.
type AuthzDecision struct {
	Allowed bool `json:"allowed"`
	// Action is the action of the filter that decided (DENY or ALLOW;
	// "" when no filter refused and none allowed explicitly).
	Action string `json:"action,omitempty"`
	// Policy is the policy that matched ("": none, e.g. an ALLOW filter
	// none of whose policies matches).
	Policy string `json:"policy,omitempty"`
}

// AuthzRequest is what RBAC reads of a request besides its HTTP parts.
type AuthzRequest struct {
	Method, Authority, PathQuery string
	Header                       http.Header
	// Port is the destination port, Principal the peer's SPIFFE ID (""
	// when not authenticated), Source its address.
	Port      uint16
	Principal string
	Source    netip.Addr
}

// TraceRBAC runs the data plane's RBAC filters, in chain order, on a
// request, and says which filter and policy decided.
func TraceRBAC(filters []*rbacfilter.RBAC, ar AuthzRequest) (AuthzDecision, error) {
	u, err := url.ParseRequestURI(ar.PathQuery)
	if err != nil {
		return AuthzDecision{}, fmt.Errorf("path %q: %w", ar.PathQuery, err)
	}
	h := ar.Header
	if h == nil {
		h = http.Header{}
	}
	r := (*stdRequest)(&http.Request{Method: ar.Method, Host: ar.Authority, URL: u, Header: h})
	path, _, _ := strings.Cut(r.pathQuery(), "?")
	c := &rbacCtx{req: r, path: path, port: ar.Port, principal: ar.Principal, source: ar.Source}
	out := AuthzDecision{Allowed: true}
	for i, f := range filters {
		rf, err := compileRBAC(f)
		if err != nil {
			return AuthzDecision{}, fmt.Errorf("rbac filter %d: %w", i, err)
		}
		if rf.action == rbacv3.RBAC_LOG {
			continue
		}
		ok, policy := rf.allowed(c)
		if !ok {
			return AuthzDecision{Action: rf.action.String(), Policy: policy}, nil
		}
		if rf.action == rbacv3.RBAC_ALLOW {
			out.Action, out.Policy = rf.action.String(), policy
		}
	}
	return out, nil
}
