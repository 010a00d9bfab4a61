package translate

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	jwtauthn "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/jwt_authn/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/emptypb"
	security "istio.io/api/security/v1beta1"

	"github.com/weft-mesh/weft/internal/config"
	"github.com/weft-mesh/weft/internal/controlplane/registry"
)

// JWTFilter is Envoy's JWT authentication filter, which weft proxy runs.
const JWTFilter = "envoy.filters.http.jwt_authn"

// AuthnFilterMetadata is where, as in Istio, the request's authenticated
// JWT lives for RBAC: request.auth.principal ("ISS/SUB") and
// request.auth.claims.
const AuthnFilterMetadata = "istio_authn"

// requestAuthentications are the RequestAuthentications for the proxy:
// every one of istio-system without a selector, of its namespace without
// one, and of its namespace selecting it (Istio combines them all).
func (b *builder) requestAuthentications() []*config.Object {
	var out []*config.Object
	for _, o := range b.in.Config {
		if o.Kind != config.KindRequestAuthentication {
			continue
		}
		sel := o.Spec.(*security.RequestAuthentication).GetSelector().GetMatchLabels()
		if (o.Namespace == RootNamespace && len(sel) == 0) ||
			(o.Namespace == b.in.Proxy.Namespace && (len(sel) == 0 || registry.Matches(sel, b.in.Proxy.Labels))) {
			out = append(out, o)
		}
	}
	return out
}

// applyRequestAuthentication puts Envoy's JWT filter first on the proxy's
// inbound chains (all chains of a gateway): a token that fails validation
// is refused (401), a missing one passes, as Istio configures it.
func (b *builder) applyRequestAuthentication() {
	ras := b.requestAuthentications()
	if len(ras) == 0 {
		return
	}
	cfg := &jwtauthn.JwtAuthentication{Providers: map[string]*jwtauthn.JwtProvider{}}
	var any []*jwtauthn.JwtRequirement
	for _, o := range ras {
		for i, r := range o.Spec.(*security.RequestAuthentication).GetJwtRules() {
			name := fmt.Sprintf("origins-%s-%s-%d", o.Namespace, o.Name, i)
			p, err := jwtProvider(r)
			if err != nil {
				b.warn(o, fmt.Sprintf("spec.jwtRules[%d]", i), err.Error()+"; the rule is skipped")
				continue
			}
			cfg.Providers[name] = p
			any = append(any, &jwtauthn.JwtRequirement{RequiresType: &jwtauthn.JwtRequirement_ProviderName{ProviderName: name}})
		}
	}
	if len(any) == 0 {
		return
	}
	any = append(any, &jwtauthn.JwtRequirement{RequiresType: &jwtauthn.JwtRequirement_AllowMissing{AllowMissing: &emptypb.Empty{}}})
	cfg.Rules = []*jwtauthn.RequirementRule{{
		Match:           &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/"}},
		RequirementType: &jwtauthn.RequirementRule_Requires{Requires: &jwtauthn.JwtRequirement{RequiresType: &jwtauthn.JwtRequirement_RequiresAny{RequiresAny: &jwtauthn.JwtRequirementOrList{Requirements: any}}}},
	}}
	filter := &hcm.HttpFilter{Name: JWTFilter, ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: mustAny(cfg)}}
	for _, r := range b.out.Listeners {
		l := r.(*listener.Listener)
		if b.in.Proxy.Type != ProxyRouter && l.GetName() != VirtualInbound {
			continue
		}
		for _, fc := range l.GetFilterChains() {
			for _, f := range fc.GetFilters() {
				m := &hcm.HttpConnectionManager{}
				if !f.GetTypedConfig().MessageIs(m) || f.GetTypedConfig().UnmarshalTo(m) != nil {
					continue
				}
				m.HttpFilters = append([]*hcm.HttpFilter{filter}, m.HttpFilters...)
				f.ConfigType = &listener.Filter_TypedConfig{TypedConfig: mustAny(m)}
			}
		}
	}
}

func jwtProvider(r *security.JWTRule) (*jwtauthn.JwtProvider, error) {
	p := &jwtauthn.JwtProvider{
		Issuer: r.GetIssuer(), Audiences: r.GetAudiences(), Forward: r.GetForwardOriginalToken(),
		FromParams: r.GetFromParams(), ForwardPayloadHeader: r.GetOutputPayloadToHeader(),
		PayloadInMetadata: r.GetIssuer(),
	}
	for _, h := range r.GetFromHeaders() {
		p.FromHeaders = append(p.FromHeaders, &jwtauthn.JwtHeader{Name: h.GetName(), ValuePrefix: h.GetPrefix()})
	}
	switch {
	case r.GetJwks() != "":
		p.JwksSourceSpecifier = &jwtauthn.JwtProvider_LocalJwks{LocalJwks: &core.DataSource{Specifier: &core.DataSource_InlineString{InlineString: r.GetJwks()}}}
	case r.GetJwksUri() != "":
		u, err := url.Parse(r.GetJwksUri())
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("jwksUri %q: not a URL", r.GetJwksUri())
		}
		port := u.Port()
		if port == "" {
			port = map[string]string{"https": "443"}[u.Scheme]
			if port == "" {
				port = "80"
			}
		}
		p.JwksSourceSpecifier = &jwtauthn.JwtProvider_RemoteJwks{RemoteJwks: &jwtauthn.RemoteJwks{
			HttpUri: &core.HttpUri{Uri: r.GetJwksUri(), HttpUpstreamType: &core.HttpUri_Cluster{Cluster: "outbound|" + port + "||" + u.Hostname()},
				Timeout: durationpb.New(5 * time.Second)},
			CacheDuration: durationpb.New(5 * time.Minute),
		}}
	default:
		return nil, fmt.Errorf("jwks or jwksUri is required")
	}
	if len(r.GetOutputClaimToHeaders()) > 0 || r.GetTimeout() != nil {
		return nil, fmt.Errorf("outputClaimToHeaders and timeout are not implemented yet")
	}
	return p, nil
}

// requestPrincipalID matches the request's authenticated JWT principal
// ("ISS/SUB"), as Istio's requestPrincipals do.
func requestPrincipalID(v string) (*rbacv3.Principal, error) {
	return &rbacv3.Principal{Identifier: &rbacv3.Principal_Metadata{Metadata: &matcher.MetadataMatcher{
		Filter: AuthnFilterMetadata,
		Path:   []*matcher.MetadataMatcher_PathSegment{{Segment: &matcher.MetadataMatcher_PathSegment_Key{Key: "request.auth.principal"}}},
		Value:  &matcher.ValueMatcher{MatchPattern: &matcher.ValueMatcher_StringMatch{StringMatch: istioString(v)}},
	}}}, nil
}

// claimID matches one value of a JWT claim (a string, or any of a list).
func claimID(claim string) func(string) (*rbacv3.Principal, error) {
	return func(v string) (*rbacv3.Principal, error) {
		return &rbacv3.Principal{Identifier: &rbacv3.Principal_Metadata{Metadata: &matcher.MetadataMatcher{
			Filter: AuthnFilterMetadata,
			Path: []*matcher.MetadataMatcher_PathSegment{{Segment: &matcher.MetadataMatcher_PathSegment_Key{Key: "request.auth.claims"}},
				{Segment: &matcher.MetadataMatcher_PathSegment_Key{Key: strings.TrimSpace(claim)}}},
			Value: &matcher.ValueMatcher{MatchPattern: &matcher.ValueMatcher_StringMatch{StringMatch: istioString(v)}},
		}}}, nil
	}
}
