package explain

import (
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	adminv3 "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	rbacfilter "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"

	"github.com/weft-mesh/weft/internal/proxy/dataplane"
	"github.com/weft-mesh/weft/internal/xdsmeta"
)

// Config is a proxy's live config, from its config dump and /clusters.
type Config struct {
	Proxy     string
	Listeners []*listener.Listener
	Routes    []*route.RouteConfiguration
	Clusters  []*cluster.Cluster
	Status    *adminv3.Clusters
}

// Request is the request to walk.
type Request struct {
	Method    string      `json:"method"`
	Authority string      `json:"authority"`
	Port      uint32      `json:"port"`
	PathQuery string      `json:"path"`
	Header    http.Header `json:"headers,omitempty"`
	// Principal is the source's SPIFFE ID, as the destination sees it
	// over mTLS; Source its address.
	Principal string     `json:"principal,omitempty"`
	Source    netip.Addr `json:"sourceAddress,omitempty"`
}

// Walk is what the source's proxy does with a request, step by step.
type Walk struct {
	Source  string  `json:"source"`
	Request Request `json:"request"`
	// Listener and RouteConfig are the listener that takes the request's
	// port and the route config its HTTP connection manager reads.
	Listener    string                `json:"listener,omitempty"`
	RouteConfig string                `json:"routeConfig,omitempty"`
	Trace       *dataplane.RouteTrace `json:"trace,omitempty"`
	// VirtualService is the object the matching route came from, Rule
	// the http rule and match clause of it.
	VirtualService *Object `json:"virtualService,omitempty"`
	Rule           *Rule   `json:"rule,omitempty"`
	// SkippedRules are the rules of the skipped routes, index for index
	// (nil where a route came from no VirtualService).
	SkippedRules []*Rule `json:"skippedRules,omitempty"`
	// Clusters are the matching route's destinations as the proxy sees them.
	Clusters []*Cluster `json:"clusters,omitempty"`
	// Destinations are the proxies behind the endpoints: their
	// PeerAuthentication mode and AuthorizationPolicies.
	Destinations []Destination `json:"destinations,omitempty"`
	// Verdict says in words what happens.
	Verdict string `json:"verdict"`
}

// Destination is the destination side of an endpoint.
type Destination struct {
	Proxy string `json:"proxy"`
	// PeerAuthentication is the mode the inbound listener enforces on the
	// port: STRICT, PERMISSIVE or DISABLE.
	PeerAuthentication string `json:"peerAuthentication"`
	Authz              *Authz `json:"authz,omitempty"`
	// Decision is what the destination's RBAC filters decide for the
	// request, run by the data plane's own RBAC code; Policy the
	// AuthorizationPolicy that decided, if one did.
	Decision *dataplane.AuthzDecision `json:"decision,omitempty"`
	Policy   *Object                  `json:"policy,omitempty"`
}

// WalkRequest walks req through the source proxy's config src. dest
// returns the live config of the proxy behind an endpoint address (nil:
// none known, e.g. not in the mesh).
func WalkRequest(src Config, req Request, dest func(addr string) *Config) (Walk, error) {
	w := Walk{Source: src.Proxy, Request: req}
	rc, lname := routeConfigFor(src, req.Port)
	w.Listener = lname
	if rc == nil {
		if lname == "" {
			w.Verdict = fmt.Sprintf("no listener of the proxy takes port %d: the request goes out unrouted (passthrough or blackhole, per the outbound traffic policy)", req.Port)
		} else {
			w.Verdict = fmt.Sprintf("listener %s on port %d is not HTTP (no route config): TCP proxying", lname, req.Port)
		}
		return w, nil
	}
	w.RouteConfig = rc.GetName()
	tr, err := dataplane.TraceRoute(rc, req.Method, req.Authority, req.PathQuery, req.Header)
	if err != nil {
		return w, err
	}
	w.Trace = &tr
	switch {
	case tr.VirtualHost == "":
		w.Verdict = fmt.Sprintf("404 NR: no virtual host of route config %s serves %s", rc.GetName(), req.Authority)
		return w, nil
	case tr.Route == nil:
		w.Verdict = fmt.Sprintf("404 NR: virtual host %s has no route matching the request", tr.VirtualHost)
		return w, nil
	}
	var md *core.Metadata
	w.VirtualService, md = routeObject(rc, tr.VirtualHost, tr.Route.Index)
	w.Rule = RuleOf(md)
	for _, sk := range tr.Skipped {
		_, md := routeObject(rc, tr.VirtualHost, sk.Index)
		w.SkippedRules = append(w.SkippedRules, RuleOf(md))
	}
	switch {
	case tr.Route.Direct != 0:
		w.Verdict = fmt.Sprintf("the route answers %d itself (direct response)", tr.Route.Direct)
		return w, nil
	case tr.Route.Redirect:
		w.Verdict = "the route answers with a redirect"
		return w, nil
	}
	var verdicts []string
	for _, wc := range tr.Route.Clusters {
		var cl *Cluster
		for _, c := range src.Clusters {
			if c.GetName() == wc.Name {
				cl = ClusterOf(c, statusOf(src.Status, wc.Name))
			}
		}
		if cl == nil {
			w.Clusters = append(w.Clusters, &Cluster{Name: wc.Name})
			verdicts = append(verdicts, "503 NC: cluster "+wc.Name+" is not in the proxy's config")
			continue
		}
		w.Clusters = append(w.Clusters, cl)
		switch n := len(cl.Endpoints); {
		case n == 0:
			verdicts = append(verdicts, fmt.Sprintf("503 UH: %s has no endpoints", cl.Name))
		case unhealthy(cl) == n:
			verdicts = append(verdicts, fmt.Sprintf("%s: %s (the proxy sends to them anyway, in panic mode)", cl.Name, ejected(cl)))
		}
		if dest == nil {
			continue
		}
		for _, ep := range cl.Endpoints {
			if d := dest(ep.Address); d != nil {
				_, port := splitPort(ep.Address)
				mode := PeerAuthMode(d.Listeners, port)
				dd := Destination{Proxy: d.Proxy, PeerAuthentication: mode, Authz: AuthzOf(d.Proxy, d.Listeners)}
				principal := req.Principal
				if mode == "DISABLE" {
					principal = ""
				}
				dec, err := dataplane.TraceRBAC(InboundRBAC(d.Listeners, port, principal != ""), dataplane.AuthzRequest{
					Method: req.Method, Authority: req.Authority, PathQuery: req.PathQuery, Header: req.Header,
					Port: uint16(port), Principal: principal, Source: req.Source,
				})
				if err == nil {
					dd.Decision = &dec
					dd.Policy = policyObject(dec.Policy)
					if !dec.Allowed {
						verdicts = append(verdicts, fmt.Sprintf("403 at %s: %s", d.Proxy, decisionText(dd)))
					}
				}
				w.Destinations = append(w.Destinations, dd)
			}
		}
	}
	if len(verdicts) == 0 {
		verdicts = append(verdicts, "routed")
	}
	w.Verdict = strings.Join(verdicts, "; ")
	return w, nil
}

func splitPort(addr string) (string, uint32) {
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		return addr, 0
	}
	n, _ := strconv.ParseUint(addr[i+1:], 10, 32)
	return addr[:i], uint32(n)
}

func statusOf(cs *adminv3.Clusters, name string) *adminv3.ClusterStatus {
	for _, s := range cs.GetClusterStatuses() {
		if s.GetName() == name {
			return s
		}
	}
	return nil
}

// routeConfigFor finds the listener for port and the route config its
// HTTP connection manager reads (RDS or inline).
func routeConfigFor(c Config, port uint32) (*route.RouteConfiguration, string) {
	for _, l := range c.Listeners {
		if l.GetAddress().GetSocketAddress().GetPortValue() != port {
			continue
		}
		for _, fc := range l.GetFilterChains() {
			for _, f := range fc.GetFilters() {
				m := &hcm.HttpConnectionManager{}
				if !f.GetTypedConfig().MessageIs(m) || f.GetTypedConfig().UnmarshalTo(m) != nil {
					continue
				}
				if rc := m.GetRouteConfig(); rc != nil {
					return rc, l.GetName()
				}
				name := m.GetRds().GetRouteConfigName()
				for _, rc := range c.Routes {
					if rc.GetName() == name {
						return rc, l.GetName()
					}
				}
			}
		}
		return nil, l.GetName()
	}
	return nil, ""
}

func routeObject(rc *route.RouteConfiguration, vhost string, index int) (*Object, *core.Metadata) {
	for _, vh := range rc.GetVirtualHosts() {
		if vh.GetName() == vhost && index < len(vh.GetRoutes()) {
			md := vh.GetRoutes()[index].GetMetadata()
			return ObjectOf(md), md
		}
	}
	return nil, nil
}

// Rule is the http rule of a VirtualService a route came from and the
// match clause of the rule (Match nil: the rule has no match clauses).
type Rule struct {
	Rule  int  `json:"rule"`
	Match *int `json:"match,omitempty"`
}

// String is "http[R].match[M]", as the rule's path in the object.
func (r *Rule) String() string {
	if r == nil {
		return ""
	}
	s := fmt.Sprintf("http[%d]", r.Rule)
	if r.Match != nil {
		s += fmt.Sprintf(".match[%d]", *r.Match)
	}
	return s
}

// RuleOf reads a route's rule and match clause (xdsmeta.RouteRuleMetadata).
func RuleOf(md *core.Metadata) *Rule {
	st := md.GetFilterMetadata()[xdsmeta.RouteRuleMetadata]
	rule, ok := st.GetFields()["rule"]
	if !ok {
		return nil
	}
	r := &Rule{Rule: int(rule.GetNumberValue())}
	if m, ok := st.GetFields()["match"]; ok {
		n := int(m.GetNumberValue())
		r.Match = &n
	}
	return r
}

// InboundRBAC returns the RBAC filters of the inbound chain a request to
// port takes (the TLS chain when mtls, else the plaintext one).
func InboundRBAC(ls []*listener.Listener, port uint32, mtls bool) []*rbacfilter.RBAC {
	var best []*rbacfilter.RBAC
	for _, l := range ls {
		for _, fc := range l.GetFilterChains() {
			m := fc.GetFilterChainMatch()
			if p := m.GetDestinationPort(); p == nil || p.GetValue() != port {
				continue
			}
			var fs []*rbacfilter.RBAC
			for _, f := range fc.GetFilters() {
				h := &hcm.HttpConnectionManager{}
				if !f.GetTypedConfig().MessageIs(h) || f.GetTypedConfig().UnmarshalTo(h) != nil {
					continue
				}
				for _, hf := range h.GetHttpFilters() {
					r := &rbacfilter.RBAC{}
					if hf.GetTypedConfig().MessageIs(r) && hf.GetTypedConfig().UnmarshalTo(r) == nil {
						fs = append(fs, r)
					}
				}
			}
			if (m.GetTransportProtocol() == "tls") == mtls {
				return fs
			}
			if best == nil {
				best = fs
			}
		}
	}
	return best
}

func policyObject(name string) *Object {
	mm := policyName.FindStringSubmatch(name)
	if mm == nil {
		return nil
	}
	return &Object{Kind: "AuthorizationPolicy", Namespace: mm[1], Name: mm[2]}
}

func decisionText(d Destination) string {
	dec := d.Decision
	switch {
	case dec == nil:
		return ""
	case !dec.Allowed && d.Policy != nil:
		return "denied by AuthorizationPolicy " + d.Policy.Name
	case !dec.Allowed:
		return "denied: no ALLOW AuthorizationPolicy matches"
	case d.Policy != nil:
		return "allowed by AuthorizationPolicy " + d.Policy.Name
	}
	return "allowed"
}

// PeerAuthMode reads the mode a sidecar's inbound chains enforce on port:
// a TLS chain alone is STRICT, a plaintext one alone DISABLE, both
// PERMISSIVE.
func PeerAuthMode(ls []*listener.Listener, port uint32) string {
	tls, plain := false, false
	for _, l := range ls {
		for _, fc := range l.GetFilterChains() {
			m := fc.GetFilterChainMatch()
			if p := m.GetDestinationPort(); p == nil || p.GetValue() != port {
				continue
			}
			switch m.GetTransportProtocol() {
			case "tls":
				tls = true
			default:
				plain = true
			}
		}
	}
	switch {
	case tls && plain:
		return "PERMISSIVE"
	case tls:
		return "STRICT"
	case plain:
		return "DISABLE"
	}
	return "unknown (no inbound chain for the port)"
}

// Print writes the walk as text.
func (w Walk) Print(out io.Writer) {
	r := w.Request
	fmt.Fprintf(out, "%s %s%s from %s\n", r.Method, r.Authority, r.PathQuery, w.Source)
	fmt.Fprintf(out, "listener:      %s (port %d) → route config %s\n", dashed(w.Listener), r.Port, dashed(w.RouteConfig))
	if t := w.Trace; t != nil {
		fmt.Fprintf(out, "virtual host:  %s\n", dashed(t.VirtualHost))
		for i, s := range t.Skipped {
			var r *Rule
			if i < len(w.SkippedRules) {
				r = w.SkippedRules[i]
			}
			fmt.Fprintf(out, "  route %d%s%s: no match: %s\n", s.Index, named(s.Name), ruleIn(r), s.Why)
		}
		if m := t.Route; m != nil {
			vs := "no VirtualService: the service's default route"
			if w.VirtualService != nil {
				vs = "from " + w.VirtualService.String()
			}
			fmt.Fprintf(out, "  route %d%s%s: MATCHES (%s)\n", m.Index, named(m.Name), ruleIn(w.Rule), vs)
			fmt.Fprintf(out, "    timeout %s, retries %d (per try %s)", durationOr(m.Timeout), m.Retries, durationOr(m.PerTryTimeout))
			if m.Fault != "" {
				fmt.Fprintf(out, ", fault: %s", m.Fault)
			}
			if len(m.Mirrors) > 0 {
				fmt.Fprintf(out, ", mirror to %s", strings.Join(m.Mirrors, ", "))
			}
			fmt.Fprintln(out)
			for _, c := range m.Clusters {
				fmt.Fprintf(out, "    → %s (weight %d)\n", c.Name, c.Weight)
			}
		}
	}
	for _, c := range w.Clusters {
		dr := ""
		if c.DestinationRule != nil {
			dr = " from " + c.DestinationRule.String()
		}
		breakers := "none"
		if len(c.Breakers) > 0 {
			var set []string
			for _, k := range []string{"maxPendingRequests", "maxRequests", "maxConnections", "maxRetries"} {
				if v, ok := c.Breakers[k]; ok {
					set = append(set, fmt.Sprintf("%s=%d", k, v))
				}
			}
			breakers = strings.Join(set, " ")
		}
		fmt.Fprintf(out, "cluster:       %s subset %s%s, outlier detection %v, circuit breakers %s\n", c.Name, dashed(c.Subset), dr, c.OutlierDetection, breakers)
		for _, ep := range c.Endpoints {
			h := "healthy"
			if !ep.Healthy {
				h = "ejected/unhealthy"
			}
			fmt.Fprintf(out, "  endpoint %s %s\n", ep.Address, h)
		}
	}
	for _, d := range w.Destinations {
		fmt.Fprintf(out, "destination:   %s: PeerAuthentication %s", d.Proxy, d.PeerAuthentication)
		if t := decisionText(d); t != "" {
			fmt.Fprintf(out, ", %s", t)
		}
		if a := d.Authz; a != nil {
			if len(a.Deny) > 0 {
				fmt.Fprintf(out, ", DENY %s", names(a.Deny))
			}
			if len(a.Allow) > 0 {
				fmt.Fprintf(out, ", ALLOW %s", names(a.Allow))
			} else if a.AllowFilter {
				fmt.Fprint(out, ", ALLOW nothing (allow-nothing)")
			}
			if len(a.Deny) == 0 && !a.AllowFilter {
				fmt.Fprint(out, ", no AuthorizationPolicy")
			}
		}
		fmt.Fprintln(out)
	}
	fmt.Fprintf(out, "verdict:       %s\n", w.Verdict)
}

func ruleIn(r *Rule) string {
	if r == nil {
		return ""
	}
	return " (" + r.String() + ")"
}

func named(s string) string {
	if s == "" {
		return ""
	}
	return " " + strconv.Quote(s)
}

func dashed(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func durationOr(d time.Duration) string {
	if d == 0 {
		return "none"
	}
	return d.String()
}

// RouteOf finds again the route that took a logged request in the
// proxy's config: its VirtualService and rule (nil when none, or when the
// route came from no VirtualService).
func RouteOf(c Config, e Entry, port uint32) (*Object, *Rule) {
	rc, _ := routeConfigFor(c, port)
	if rc == nil || e.Path == "" {
		return nil, nil
	}
	method := e.Method
	if method == "" {
		method = http.MethodGet
	}
	tr, err := dataplane.TraceRoute(rc, method, e.Authority, e.Path, nil)
	if err != nil || tr.Route == nil {
		return nil, nil
	}
	o, md := routeObject(rc, tr.VirtualHost, tr.Route.Index)
	return o, RuleOf(md)
}
