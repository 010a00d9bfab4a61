package translate

import (
	"strconv"
	"strings"

	corsfilter "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/cors/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	networking "istio.io/api/networking/v1alpha3"
)

// CORSFilter is the name of Envoy's CORS filter.
const CORSFilter = "envoy.filters.http.cors"

// perFilterConfig is a route's typed_per_filter_config: its fault and CORS policy.
func perFilterConfig(hr *networking.HTTPRoute) map[string]*anypb.Any {
	out := faultConfig(hr.GetFault())
	if c := hr.GetCorsPolicy(); c != nil {
		if out == nil {
			out = map[string]*anypb.Any{}
		}
		out[CORSFilter] = mustAny(corsPolicy(c))
	}
	return out
}

// corsPolicy turns Istio's corsPolicy into Envoy's per-route CORS policy.
func corsPolicy(c *networking.CorsPolicy) *corsfilter.CorsPolicy {
	p := &corsfilter.CorsPolicy{
		AllowMethods:  strings.Join(c.GetAllowMethods(), ","),
		AllowHeaders:  strings.Join(c.GetAllowHeaders(), ","),
		ExposeHeaders: strings.Join(c.GetExposeHeaders(), ","),
	}
	if c.GetMaxAge() != nil {
		p.MaxAge = strconv.FormatInt(int64(c.GetMaxAge().AsDuration().Seconds()), 10)
	}
	if c.GetAllowCredentials() != nil {
		p.AllowCredentials = wrapperspb.Bool(c.GetAllowCredentials().GetValue())
	}
	for _, o := range c.GetAllowOrigins() {
		p.AllowOriginStringMatch = append(p.AllowOriginStringMatch, stringMatcher(o))
	}
	// Istio's deprecated allowOrigin (exact origins) still applies.
	for _, o := range c.GetAllowOrigin() {
		p.AllowOriginStringMatch = append(p.AllowOriginStringMatch, &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Exact{Exact: o}})
	}
	return p
}
