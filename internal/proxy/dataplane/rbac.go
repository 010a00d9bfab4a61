package dataplane

import (
	"fmt"
	"net/netip"
	"strings"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	rbacfilter "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	netrbac "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/rbac/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
)

// rbacDeniedBody is Envoy's answer to a request its RBAC filter denies (403).
const rbacDeniedBody = "RBAC: access denied"

// rbacCtx is what an RBAC decision reads of a request.
type rbacCtx struct {
	req       request
	path      string // without the query
	port      uint16 // the destination port
	principal string // the peer's SPIFFE ID ("": not authenticated)
	source    netip.Addr
	// jwt is the request's validated JWT (nil: none).
	jwt *jwtResult
}

type rbacMatch func(*rbacCtx) bool

// rrbac is one compiled RBAC filter.
type rrbac struct {
	action   rbacv3.RBAC_Action
	policies []rpolicy
}

type rpolicy struct {
	name        string
	permissions []rbacMatch
	principals  []rbacMatch
}

func (p *rpolicy) matches(c *rbacCtx) bool {
	perm, id := false, false
	for _, m := range p.permissions {
		if m(c) {
			perm = true
			break
		}
	}
	if !perm {
		return false
	}
	for _, m := range p.principals {
		if m(c) {
			id = true
			break
		}
	}
	return id
}

// allowed reports whether the filter lets the request through, and the
// policy that decided (for logs).
func (r *rrbac) allowed(c *rbacCtx) (bool, string) {
	for i := range r.policies {
		if r.policies[i].matches(c) {
			return r.action != rbacv3.RBAC_DENY, r.policies[i].name
		}
	}
	return r.action != rbacv3.RBAC_ALLOW, ""
}

// authorize runs a chain's RBAC filters in order: a DENY match or an ALLOW
// filter without a match refuses the request.
func authorize(filters []*rrbac, c *rbacCtx) bool {
	for _, f := range filters {
		if f.action == rbacv3.RBAC_LOG {
			continue
		}
		if ok, _ := f.allowed(c); !ok {
			return false
		}
	}
	return true
}

func compileRBAC(cfg *rbacfilter.RBAC) (*rrbac, error) {
	if cfg.GetShadowRules() != nil || cfg.GetMatcher() != nil || cfg.GetShadowMatcher() != nil {
		return nil, fmt.Errorf("rbac: only rules are supported (no matcher, no shadow rules)")
	}
	return compileRBACRules(cfg.GetRules())
}

// compileNetworkRBAC compiles Envoy's network RBAC filter, which decides on
// a connection: its rules may not read HTTP (headers, paths, JWTs).
func compileNetworkRBAC(cfg *netrbac.RBAC) (*rrbac, error) {
	if cfg.GetShadowRules() != nil || cfg.GetMatcher() != nil || cfg.GetShadowMatcher() != nil {
		return nil, fmt.Errorf("network rbac: only rules are supported (no matcher, no shadow rules)")
	}
	for name, p := range cfg.GetRules().GetPolicies() {
		for _, perm := range p.GetPermissions() {
			if err := connectionPermission(perm); err != nil {
				return nil, fmt.Errorf("network rbac policy %q: %w", name, err)
			}
		}
		for _, id := range p.GetPrincipals() {
			if err := connectionPrincipal(id); err != nil {
				return nil, fmt.Errorf("network rbac policy %q: %w", name, err)
			}
		}
	}
	return compileRBACRules(cfg.GetRules())
}

// connectionPermission refuses permissions a connection cannot answer.
func connectionPermission(p *rbacv3.Permission) error {
	switch r := p.GetRule().(type) {
	case *rbacv3.Permission_Header, *rbacv3.Permission_UrlPath:
		return fmt.Errorf("permission %T needs HTTP; not allowed on a connection", r)
	case *rbacv3.Permission_AndRules:
		for _, q := range r.AndRules.GetRules() {
			if err := connectionPermission(q); err != nil {
				return err
			}
		}
	case *rbacv3.Permission_OrRules:
		for _, q := range r.OrRules.GetRules() {
			if err := connectionPermission(q); err != nil {
				return err
			}
		}
	case *rbacv3.Permission_NotRule:
		return connectionPermission(r.NotRule)
	}
	return nil
}

// connectionPrincipal refuses principals a connection cannot answer.
func connectionPrincipal(p *rbacv3.Principal) error {
	switch id := p.GetIdentifier().(type) {
	case *rbacv3.Principal_Metadata:
		return fmt.Errorf("principal %T (request authentication) needs HTTP; not allowed on a connection", id)
	case *rbacv3.Principal_AndIds:
		for _, q := range id.AndIds.GetIds() {
			if err := connectionPrincipal(q); err != nil {
				return err
			}
		}
	case *rbacv3.Principal_OrIds:
		for _, q := range id.OrIds.GetIds() {
			if err := connectionPrincipal(q); err != nil {
				return err
			}
		}
	case *rbacv3.Principal_NotId:
		return connectionPrincipal(id.NotId)
	}
	return nil
}

func compileRBACRules(rules *rbacv3.RBAC) (*rrbac, error) {
	out := &rrbac{action: rules.GetAction()}
	for _, name := range sortedKeys(rules.GetPolicies()) {
		p := rules.GetPolicies()[name]
		rp := rpolicy{name: name}
		for _, perm := range p.GetPermissions() {
			m, err := compilePermission(perm)
			if err != nil {
				return nil, fmt.Errorf("rbac policy %q: %w", name, err)
			}
			rp.permissions = append(rp.permissions, m)
		}
		for _, id := range p.GetPrincipals() {
			m, err := compilePrincipal(id)
			if err != nil {
				return nil, fmt.Errorf("rbac policy %q: %w", name, err)
			}
			rp.principals = append(rp.principals, m)
		}
		if p.GetCondition() != nil || p.GetCheckedCondition() != nil {
			return nil, fmt.Errorf("rbac policy %q: conditions are not supported", name)
		}
		out.policies = append(out.policies, rp)
	}
	return out, nil
}

func allOf(ms []rbacMatch) rbacMatch {
	return func(c *rbacCtx) bool {
		for _, m := range ms {
			if !m(c) {
				return false
			}
		}
		return true
	}
}

func anyOfMatch(ms []rbacMatch) rbacMatch {
	return func(c *rbacCtx) bool {
		for _, m := range ms {
			if m(c) {
				return true
			}
		}
		return false
	}
}

func compilePermission(p *rbacv3.Permission) (rbacMatch, error) {
	set := func(rules []*rbacv3.Permission) ([]rbacMatch, error) {
		var out []rbacMatch
		for _, r := range rules {
			m, err := compilePermission(r)
			if err != nil {
				return nil, err
			}
			out = append(out, m)
		}
		return out, nil
	}
	switch r := p.GetRule().(type) {
	case *rbacv3.Permission_Any:
		return func(*rbacCtx) bool { return true }, nil
	case *rbacv3.Permission_AndRules:
		ms, err := set(r.AndRules.GetRules())
		return allOf(ms), err
	case *rbacv3.Permission_OrRules:
		ms, err := set(r.OrRules.GetRules())
		return anyOfMatch(ms), err
	case *rbacv3.Permission_NotRule:
		m, err := compilePermission(r.NotRule)
		return func(c *rbacCtx) bool { return !m(c) }, err
	case *rbacv3.Permission_Header:
		hms, err := compileHeaderMatchers([]*route.HeaderMatcher{r.Header})
		if err != nil {
			return nil, err
		}
		h := hms[0]
		return func(c *rbacCtx) bool { return h.matches(c.req, c.req.pathQuery()) != h.invert }, nil
	case *rbacv3.Permission_UrlPath:
		sm, err := compileString(r.UrlPath.GetPath())
		if err != nil {
			return nil, err
		}
		return func(c *rbacCtx) bool { return sm.match(c.path) }, nil
	case *rbacv3.Permission_DestinationPort:
		port := r.DestinationPort
		return func(c *rbacCtx) bool { return uint32(c.port) == port }, nil
	}
	return nil, fmt.Errorf("permission %T is not supported", p.GetRule())
}

func compilePrincipal(p *rbacv3.Principal) (rbacMatch, error) {
	set := func(ids []*rbacv3.Principal) ([]rbacMatch, error) {
		var out []rbacMatch
		for _, id := range ids {
			m, err := compilePrincipal(id)
			if err != nil {
				return nil, err
			}
			out = append(out, m)
		}
		return out, nil
	}
	switch id := p.GetIdentifier().(type) {
	case *rbacv3.Principal_Any:
		return func(*rbacCtx) bool { return true }, nil
	case *rbacv3.Principal_AndIds:
		ms, err := set(id.AndIds.GetIds())
		return allOf(ms), err
	case *rbacv3.Principal_OrIds:
		ms, err := set(id.OrIds.GetIds())
		return anyOfMatch(ms), err
	case *rbacv3.Principal_NotId:
		m, err := compilePrincipal(id.NotId)
		return func(c *rbacCtx) bool { return !m(c) }, err
	case *rbacv3.Principal_Authenticated_:
		pn := id.Authenticated.GetPrincipalName()
		if pn == nil {
			return func(c *rbacCtx) bool { return c.principal != "" }, nil
		}
		sm, err := compileString(pn)
		if err != nil {
			return nil, err
		}
		return func(c *rbacCtx) bool { return c.principal != "" && sm.match(c.principal) }, nil
	case *rbacv3.Principal_Metadata:
		return compileAuthnMetadata(id.Metadata)
	case *rbacv3.Principal_DirectRemoteIp:
		return cidrMatch(id.DirectRemoteIp)
	case *rbacv3.Principal_RemoteIp:
		return cidrMatch(id.RemoteIp)
	case *rbacv3.Principal_SourceIp:
		return cidrMatch(id.SourceIp)
	}
	return nil, fmt.Errorf("principal %T is not supported", p.GetIdentifier())
}

func cidrMatch(r *core.CidrRange) (rbacMatch, error) {
	addr, err := netip.ParseAddr(strings.TrimSpace(r.GetAddressPrefix()))
	if err != nil {
		return nil, fmt.Errorf("cidr %q: %w", r.GetAddressPrefix(), err)
	}
	bits := addr.BitLen()
	if r.GetPrefixLen() != nil {
		bits = int(r.GetPrefixLen().GetValue())
	}
	pfx, err := addr.Prefix(bits)
	if err != nil {
		return nil, fmt.Errorf("cidr %q/%d: %w", r.GetAddressPrefix(), bits, err)
	}
	return func(c *rbacCtx) bool { return c.source.IsValid() && pfx.Contains(c.source.Unmap()) }, nil
}

// compileAuthnMetadata matches the request's JWT as Istio's RBAC reads it
// from the istio_authn metadata: request.auth.principal or a claim.
func compileAuthnMetadata(m *matcher.MetadataMatcher) (rbacMatch, error) {
	if m.GetFilter() != "istio_authn" || m.GetInvert() {
		return nil, fmt.Errorf("metadata matcher %q: only istio_authn is supported", m.GetFilter())
	}
	if m.GetValue().GetStringMatch() == nil {
		return nil, fmt.Errorf("metadata matcher: a string match is required")
	}
	sm, err := compileString(m.GetValue().GetStringMatch())
	if err != nil {
		return nil, err
	}
	path := m.GetPath()
	switch {
	case len(path) == 1 && path[0].GetKey() == "request.auth.principal":
		return func(c *rbacCtx) bool { return c.jwt != nil && sm.match(c.jwt.principal) }, nil
	case len(path) == 2 && path[0].GetKey() == "request.auth.claims":
		claim := path[1].GetKey()
		return func(c *rbacCtx) bool {
			if c.jwt == nil {
				return false
			}
			for _, v := range claimValues(c.jwt.claims, claim) {
				if sm.match(v) {
					return true
				}
			}
			return false
		}, nil
	}
	return nil, fmt.Errorf("metadata matcher: path %v is not supported", path)
}
