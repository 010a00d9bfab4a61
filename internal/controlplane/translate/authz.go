package translate

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	rbacfilter "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	netrbac "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/rbac/v3"
	tcpproxy "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"
	security "istio.io/api/security/v1beta1"

	"github.com/weft-mesh/weft/internal/config"
	"github.com/weft-mesh/weft/internal/controlplane/registry"
)

// RBACFilter is Envoy's HTTP RBAC filter, which weft proxy evaluates.
const RBACFilter = "envoy.filters.http.rbac"

// NetworkRBACFilter is Envoy's network RBAC filter: AuthorizationPolicy on
// TCP, deciding once per connection (a denied connection is closed).
const NetworkRBACFilter = "envoy.filters.network.rbac"

// authorizationPolicies are the policies selecting the proxy (its
// namespace's with a matching or no selector, and istio-system's without one).
func (b *builder) authorizationPolicies() []*config.Object {
	var out []*config.Object
	for _, o := range b.in.Config {
		if o.Kind != config.KindAuthorizationPolicy {
			continue
		}
		sel := o.Spec.(*security.AuthorizationPolicy).GetSelector().GetMatchLabels()
		switch {
		case o.Namespace == RootNamespace && len(sel) == 0:
		case o.Namespace == b.in.Proxy.Namespace && (len(sel) == 0 || registry.Matches(sel, b.in.Proxy.Labels)):
		default:
			continue
		}
		out = append(out, o)
	}
	sort.Slice(out, func(i, j int) bool { return older(out[i], out[j]) })
	return out
}

// applyAuthorization adds Istio's RBAC filters to the proxy's inbound HTTP
// chains: DENY policies first, then ALLOW ones (when any exists, a request
// none allows is denied; an ALLOW policy without rules allows nothing),
// AUDIT ones as LOG. CUSTOM is refused at apply.
func (b *builder) applyAuthorization() {
	if b.in.Proxy.Type == ProxyRouter {
		return
	}
	byAction := map[security.AuthorizationPolicy_Action]map[string]*rbacv3.Policy{}
	tcpByAction := map[security.AuthorizationPolicy_Action]map[string]*rbacv3.Policy{}
	for _, o := range b.authorizationPolicies() {
		ap := o.Spec.(*security.AuthorizationPolicy)
		action := ap.GetAction()
		if action == security.AuthorizationPolicy_CUSTOM {
			b.warn(o, "spec.action", "CUSTOM is not supported; the policy is ignored")
			continue
		}
		if byAction[action] == nil {
			byAction[action] = map[string]*rbacv3.Policy{}
			if action != security.AuthorizationPolicy_AUDIT {
				tcpByAction[action] = map[string]*rbacv3.Policy{}
			}
		}
		for i, r := range ap.GetRules() {
			name := fmt.Sprintf("ns[%s]-policy[%s]-rule[%d]", o.Namespace, o.Name, i)
			p, err := rulePolicy(r, o.Namespace)
			if err != nil {
				b.warn(o, fmt.Sprintf("spec.rules[%d]", i), err.Error()+"; the rule is skipped")
				continue
			}
			byAction[action][name] = p
			if tr := tcpRule(r, action); tr != nil && tcpByAction[action] != nil {
				if p, err := rulePolicy(tr, o.Namespace); err == nil {
					tcpByAction[action][name] = p
				}
			}
		}
	}
	b.applyNetworkAuthorization(tcpByAction)
	var filters []*hcm.HttpFilter
	add := func(action security.AuthorizationPolicy_Action, envoyAction rbacv3.RBAC_Action, name string) {
		policies, ok := byAction[action]
		if !ok {
			return
		}
		cfg := &rbacfilter.RBAC{Rules: &rbacv3.RBAC{Action: envoyAction, Policies: policies}}
		filters = append(filters, &hcm.HttpFilter{Name: name, ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: mustAny(cfg)}})
	}
	add(security.AuthorizationPolicy_AUDIT, rbacv3.RBAC_LOG, RBACFilter)
	add(security.AuthorizationPolicy_DENY, rbacv3.RBAC_DENY, RBACFilter)
	add(security.AuthorizationPolicy_ALLOW, rbacv3.RBAC_ALLOW, RBACFilter)
	if len(filters) == 0 {
		return
	}
	b.eachInboundChain(func(fc *listener.FilterChain) {
		for _, f := range fc.GetFilters() {
			m := &hcm.HttpConnectionManager{}
			if !f.GetTypedConfig().MessageIs(m) || f.GetTypedConfig().UnmarshalTo(m) != nil {
				continue
			}
			m.HttpFilters = append(append([]*hcm.HttpFilter(nil), filters...), m.HttpFilters...)
			f.ConfigType = &listener.Filter_TypedConfig{TypedConfig: mustAny(m)}
		}
	})
}

// rulePolicy translates one rule: the OR of its froms ANDed, the OR of
// its tos ANDed, and every when, all ANDed — as Istio does.
func rulePolicy(r *security.Rule, ns string) (*rbacv3.Policy, error) {
	p := &rbacv3.Policy{}
	var principals []*rbacv3.Principal
	for _, f := range r.GetFrom() {
		id, err := sourcePrincipal(f.GetSource())
		if err != nil {
			return nil, err
		}
		principals = append(principals, id)
	}
	var perms []*rbacv3.Permission
	for _, t := range r.GetTo() {
		perm, err := operationPermission(t.GetOperation())
		if err != nil {
			return nil, err
		}
		perms = append(perms, perm)
	}
	var condIDs []*rbacv3.Principal
	var condPerms []*rbacv3.Permission
	for _, c := range r.GetWhen() {
		id, perm, err := condition(c)
		if err != nil {
			return nil, err
		}
		if id != nil {
			condIDs = append(condIDs, id)
		}
		if perm != nil {
			condPerms = append(condPerms, perm)
		}
	}
	ids := []*rbacv3.Principal{}
	if len(principals) > 0 {
		ids = append(ids, orIDs(principals))
	}
	ids = append(ids, condIDs...)
	p.Principals = []*rbacv3.Principal{andIDs(ids)}
	ps := []*rbacv3.Permission{}
	if len(perms) > 0 {
		ps = append(ps, orPerms(perms))
	}
	ps = append(ps, condPerms...)
	p.Permissions = []*rbacv3.Permission{andPerms(ps)}
	return p, nil
}

func anyID() *rbacv3.Principal {
	return &rbacv3.Principal{Identifier: &rbacv3.Principal_Any{Any: true}}
}
func anyPerm() *rbacv3.Permission {
	return &rbacv3.Permission{Rule: &rbacv3.Permission_Any{Any: true}}
}

func andIDs(ids []*rbacv3.Principal) *rbacv3.Principal {
	if len(ids) == 0 {
		return anyID()
	}
	return &rbacv3.Principal{Identifier: &rbacv3.Principal_AndIds{AndIds: &rbacv3.Principal_Set{Ids: ids}}}
}
func orIDs(ids []*rbacv3.Principal) *rbacv3.Principal {
	return &rbacv3.Principal{Identifier: &rbacv3.Principal_OrIds{OrIds: &rbacv3.Principal_Set{Ids: ids}}}
}
func notID(id *rbacv3.Principal) *rbacv3.Principal {
	return &rbacv3.Principal{Identifier: &rbacv3.Principal_NotId{NotId: id}}
}
func andPerms(ps []*rbacv3.Permission) *rbacv3.Permission {
	if len(ps) == 0 {
		return anyPerm()
	}
	return &rbacv3.Permission{Rule: &rbacv3.Permission_AndRules{AndRules: &rbacv3.Permission_Set{Rules: ps}}}
}
func orPerms(ps []*rbacv3.Permission) *rbacv3.Permission {
	return &rbacv3.Permission{Rule: &rbacv3.Permission_OrRules{OrRules: &rbacv3.Permission_Set{Rules: ps}}}
}
func notPerm(p *rbacv3.Permission) *rbacv3.Permission {
	return &rbacv3.Permission{Rule: &rbacv3.Permission_NotRule{NotRule: p}}
}

// istioString is Istio's string match in policies: exact, "prefix*",
// "*suffix", or "*" (present).
func istioString(v string) *matcher.StringMatcher {
	switch {
	case v == "*":
		return &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_SafeRegex{SafeRegex: &matcher.RegexMatcher{Regex: ".+"}}}
	case strings.HasSuffix(v, "*"):
		return &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Prefix{Prefix: strings.TrimSuffix(v, "*")}}
	case strings.HasPrefix(v, "*"):
		return &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Suffix{Suffix: strings.TrimPrefix(v, "*")}}
	}
	return &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Exact{Exact: v}}
}

// values builds OR(field values) and, for the not-values, NOT(OR(...)).
func idValues(vals, notVals []string, one func(string) (*rbacv3.Principal, error)) ([]*rbacv3.Principal, error) {
	var out []*rbacv3.Principal
	for _, set := range []struct {
		vals []string
		not  bool
	}{{vals, false}, {notVals, true}} {
		if len(set.vals) == 0 {
			continue
		}
		var ids []*rbacv3.Principal
		for _, v := range set.vals {
			id, err := one(v)
			if err != nil {
				return nil, err
			}
			ids = append(ids, id)
		}
		id := orIDs(ids)
		if set.not {
			id = notID(id)
		}
		out = append(out, id)
	}
	return out, nil
}

func principalName(v string) (*rbacv3.Principal, error) {
	m := istioString(v)
	if e := m.GetExact(); e != "" {
		m = &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Exact{Exact: "spiffe://" + e}}
	} else if p := m.GetPrefix(); p != "" {
		m = &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Prefix{Prefix: "spiffe://" + p}}
	}
	return &rbacv3.Principal{Identifier: &rbacv3.Principal_Authenticated_{Authenticated: &rbacv3.Principal_Authenticated{PrincipalName: m}}}, nil
}

func namespacePrincipal(ns string) (*rbacv3.Principal, error) {
	re := ".*/ns/" + regexp.QuoteMeta(ns) + "/.*"
	if ns == "*" {
		re = ".*/ns/.+/.*"
	}
	return &rbacv3.Principal{Identifier: &rbacv3.Principal_Authenticated_{Authenticated: &rbacv3.Principal_Authenticated{
		PrincipalName: &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_SafeRegex{SafeRegex: &matcher.RegexMatcher{Regex: re}}}}}}, nil
}

func cidrPrincipal(remote bool) func(string) (*rbacv3.Principal, error) {
	return func(v string) (*rbacv3.Principal, error) {
		cr, err := cidr(v)
		if err != nil {
			return nil, err
		}
		if remote {
			return &rbacv3.Principal{Identifier: &rbacv3.Principal_RemoteIp{RemoteIp: cr}}, nil
		}
		return &rbacv3.Principal{Identifier: &rbacv3.Principal_DirectRemoteIp{DirectRemoteIp: cr}}, nil
	}
}

func cidr(v string) (*core.CidrRange, error) {
	addr, bits := v, -1
	if a, b, ok := strings.Cut(v, "/"); ok {
		n, err := strconv.Atoi(b)
		if err != nil {
			return nil, fmt.Errorf("ipBlock %q: bad prefix length", v)
		}
		addr, bits = a, n
	}
	if bits < 0 {
		bits = 32
		if strings.Contains(addr, ":") {
			bits = 128
		}
	}
	return &core.CidrRange{AddressPrefix: addr, PrefixLen: wrapperspb.UInt32(uint32(bits))}, nil
}

func sourcePrincipal(s *security.Source) (*rbacv3.Principal, error) {
	var ids []*rbacv3.Principal
	groups := []struct {
		vals, nots []string
		one        func(string) (*rbacv3.Principal, error)
	}{
		{s.GetPrincipals(), s.GetNotPrincipals(), principalName},
		{s.GetNamespaces(), s.GetNotNamespaces(), namespacePrincipal},
		{s.GetIpBlocks(), s.GetNotIpBlocks(), cidrPrincipal(false)},
		{s.GetRemoteIpBlocks(), s.GetNotRemoteIpBlocks(), cidrPrincipal(true)},
	}
	for _, g := range groups {
		got, err := idValues(g.vals, g.nots, g.one)
		if err != nil {
			return nil, err
		}
		ids = append(ids, got...)
	}
	rp, err := idValues(s.GetRequestPrincipals(), s.GetNotRequestPrincipals(), requestPrincipalID)
	if err != nil {
		return nil, err
	}
	ids = append(ids, rp...)
	if len(s.GetServiceAccounts())+len(s.GetNotServiceAccounts()) > 0 {
		sa := func(v string) (*rbacv3.Principal, error) {
			ns, name, ok := strings.Cut(v, "/")
			if !ok {
				return nil, fmt.Errorf("serviceAccounts %q: want NAMESPACE/NAME", v)
			}
			return principalName(TrustDomain + "/ns/" + ns + "/sa/" + name)
		}
		got, err := idValues(s.GetServiceAccounts(), s.GetNotServiceAccounts(), sa)
		if err != nil {
			return nil, err
		}
		ids = append(ids, got...)
	}
	return andIDs(ids), nil
}

func headerPerm(name string, m *matcher.StringMatcher) *rbacv3.Permission {
	return &rbacv3.Permission{Rule: &rbacv3.Permission_Header{Header: &route.HeaderMatcher{Name: name,
		HeaderMatchSpecifier: &route.HeaderMatcher_StringMatch{StringMatch: m}}}}
}

func permValues(vals, nots []string, one func(string) (*rbacv3.Permission, error)) ([]*rbacv3.Permission, error) {
	var out []*rbacv3.Permission
	for i, set := range [][]string{vals, nots} {
		if len(set) == 0 {
			continue
		}
		var ps []*rbacv3.Permission
		for _, v := range set {
			p, err := one(v)
			if err != nil {
				return nil, err
			}
			ps = append(ps, p)
		}
		p := orPerms(ps)
		if i == 1 {
			p = notPerm(p)
		}
		out = append(out, p)
	}
	return out, nil
}

func operationPermission(op *security.Operation) (*rbacv3.Permission, error) {
	var ps []*rbacv3.Permission
	groups := []struct {
		vals, nots []string
		one        func(string) (*rbacv3.Permission, error)
	}{
		{op.GetHosts(), op.GetNotHosts(), func(v string) (*rbacv3.Permission, error) { return headerPerm(":authority", istioString(v)), nil }},
		{op.GetMethods(), op.GetNotMethods(), func(v string) (*rbacv3.Permission, error) { return headerPerm(":method", istioString(v)), nil }},
		{op.GetPaths(), op.GetNotPaths(), func(v string) (*rbacv3.Permission, error) {
			return &rbacv3.Permission{Rule: &rbacv3.Permission_UrlPath{UrlPath: &matcher.PathMatcher{Rule: &matcher.PathMatcher_Path{Path: istioString(v)}}}}, nil
		}},
		{op.GetPorts(), op.GetNotPorts(), func(v string) (*rbacv3.Permission, error) {
			n, err := strconv.ParseUint(v, 10, 16)
			if err != nil {
				return nil, fmt.Errorf("ports %q: want a port number", v)
			}
			return &rbacv3.Permission{Rule: &rbacv3.Permission_DestinationPort{DestinationPort: uint32(n)}}, nil
		}},
	}
	for _, g := range groups {
		got, err := permValues(g.vals, g.nots, g.one)
		if err != nil {
			return nil, err
		}
		ps = append(ps, got...)
	}
	return andPerms(ps), nil
}

var (
	headerKey = regexp.MustCompile(`^request\.headers\[(.+)\]$`)
	claimKey  = regexp.MustCompile(`^request\.auth\.claims\[(.+)\]$`)
)

// condition translates a when clause of Istio's keys.
func condition(c *security.Condition) (*rbacv3.Principal, *rbacv3.Permission, error) {
	key := c.GetKey()
	if m := headerKey.FindStringSubmatch(key); m != nil {
		ps, err := permValues(c.GetValues(), c.GetNotValues(), func(v string) (*rbacv3.Permission, error) {
			return headerPerm(strings.ToLower(m[1]), istioString(v)), nil
		})
		return nil, andPerms(ps), err
	}
	if m := claimKey.FindStringSubmatch(key); m != nil {
		ids, err := idValues(c.GetValues(), c.GetNotValues(), claimID(m[1]))
		return andIDs(ids), nil, err
	}
	switch key {
	case "request.auth.principal":
		ids, err := idValues(c.GetValues(), c.GetNotValues(), requestPrincipalID)
		return andIDs(ids), nil, err
	case "source.ip":
		ids, err := idValues(c.GetValues(), c.GetNotValues(), cidrPrincipal(false))
		return andIDs(ids), nil, err
	case "remote.ip":
		ids, err := idValues(c.GetValues(), c.GetNotValues(), cidrPrincipal(true))
		return andIDs(ids), nil, err
	case "source.namespace":
		ids, err := idValues(c.GetValues(), c.GetNotValues(), namespacePrincipal)
		return andIDs(ids), nil, err
	case "source.principal":
		ids, err := idValues(c.GetValues(), c.GetNotValues(), principalName)
		return andIDs(ids), nil, err
	case "destination.port":
		ps, err := permValues(c.GetValues(), c.GetNotValues(), func(v string) (*rbacv3.Permission, error) {
			n, err := strconv.ParseUint(v, 10, 16)
			if err != nil {
				return nil, fmt.Errorf("destination.port %q: want a port number", v)
			}
			return &rbacv3.Permission{Rule: &rbacv3.Permission_DestinationPort{DestinationPort: uint32(n)}}, nil
		})
		return nil, andPerms(ps), err
	}
	return nil, nil, fmt.Errorf("when key %q is not supported yet (request.headers[], source.ip, remote.ip, source.namespace, source.principal, destination.port are)", key)
}

// applyNetworkAuthorization puts network RBAC filters (DENY, then ALLOW)
// before the tcp_proxy of every inbound TCP filter chain.
func (b *builder) applyNetworkAuthorization(byAction map[security.AuthorizationPolicy_Action]map[string]*rbacv3.Policy) {
	var filters []*listener.Filter
	for _, a := range []struct {
		istio security.AuthorizationPolicy_Action
		envoy rbacv3.RBAC_Action
	}{{security.AuthorizationPolicy_DENY, rbacv3.RBAC_DENY}, {security.AuthorizationPolicy_ALLOW, rbacv3.RBAC_ALLOW}} {
		policies, ok := byAction[a.istio]
		if !ok {
			continue
		}
		cfg := &netrbac.RBAC{StatPrefix: "tcp.", Rules: &rbacv3.RBAC{Action: a.envoy, Policies: policies}}
		filters = append(filters, &listener.Filter{Name: NetworkRBACFilter, ConfigType: &listener.Filter_TypedConfig{TypedConfig: mustAny(cfg)}})
	}
	if len(filters) == 0 {
		return
	}
	b.eachInboundChain(func(fc *listener.FilterChain) {
		fs := fc.GetFilters()
		if len(fs) == 1 && fs[0].GetTypedConfig().MessageIs(&tcpproxy.TcpProxy{}) {
			fc.Filters = append(append([]*listener.Filter(nil), filters...), fs...)
		}
	})
}

// eachInboundChain calls fn with every filter chain of the proxy's
// virtualInbound listener (a proxyless server's: of its inbound listeners).
func (b *builder) eachInboundChain(fn func(*listener.FilterChain)) {
	for _, r := range b.out.Listeners {
		l := r.(*listener.Listener)
		if l.GetName() != VirtualInbound && !strings.HasPrefix(l.GetName(), GRPCInboundPrefix) {
			continue
		}
		for _, fc := range l.GetFilterChains() {
			fn(fc)
		}
	}
}

// tcpRule is a rule as Istio applies it to TCP traffic, which has no HTTP
// attributes: an ALLOW rule naming any HTTP-only field never matches (nil);
// a DENY rule loses its HTTP-only fields, so it denies more.
func tcpRule(r *security.Rule, action security.AuthorizationPolicy_Action) *security.Rule {
	out := proto.Clone(r).(*security.Rule)
	stripped := false
	for _, f := range out.GetFrom() {
		if s := f.GetSource(); s != nil && len(s.RequestPrincipals)+len(s.NotRequestPrincipals) > 0 {
			s.RequestPrincipals, s.NotRequestPrincipals, stripped = nil, nil, true
		}
	}
	for _, t := range out.GetTo() {
		if op := t.GetOperation(); op != nil && len(op.Hosts)+len(op.NotHosts)+len(op.Methods)+len(op.NotMethods)+len(op.Paths)+len(op.NotPaths) > 0 {
			op.Hosts, op.NotHosts, op.Methods, op.NotMethods, op.Paths, op.NotPaths, stripped = nil, nil, nil, nil, nil, nil, true
		}
	}
	var when []*security.Condition
	for _, c := range out.GetWhen() {
		if strings.HasPrefix(c.GetKey(), "request.") {
			stripped = true
			continue
		}
		when = append(when, c)
	}
	out.When = when
	if stripped && action == security.AuthorizationPolicy_ALLOW {
		return nil
	}
	return out
}
