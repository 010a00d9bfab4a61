package dataplane

import (
	"fmt"
	"net/http"

	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	corsfilter "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/cors/v3"
)

// corsFilter is the name under which routes carry their CORS policy.
const corsFilter = "envoy.filters.http.cors"

// rcors is a route's compiled CORS policy, as Envoy's cors filter applies it.
type rcors struct {
	origins                          []*stringMatch
	methods, headers, expose, maxAge string
	credentials                      bool
}

func compileCORS(r *route.Route) (*rcors, error) {
	a := r.GetTypedPerFilterConfig()[corsFilter]
	if a == nil {
		return nil, nil
	}
	p := &corsfilter.CorsPolicy{}
	if err := a.UnmarshalTo(p); err != nil {
		return nil, fmt.Errorf("typed_per_filter_config %q: %w", corsFilter, err)
	}
	if p.GetFilterEnabled() != nil || p.GetShadowEnabled() != nil || p.GetAllowPrivateNetworkAccess() != nil || p.GetForwardNotMatchingPreflights() != nil {
		return nil, fmt.Errorf("cors: runtime fractions, private network access and forward_not_matching_preflights are not supported")
	}
	c := &rcors{methods: p.GetAllowMethods(), headers: p.GetAllowHeaders(), expose: p.GetExposeHeaders(),
		maxAge: p.GetMaxAge(), credentials: p.GetAllowCredentials().GetValue()}
	for i, m := range p.GetAllowOriginStringMatch() {
		sm, err := compileString(m)
		if err != nil {
			return nil, fmt.Errorf("cors.allow_origin_string_match[%d]: %w", i, err)
		}
		c.origins = append(c.origins, sm)
	}
	return c, nil
}

// allowed reports whether origin may make cross-origin requests.
func (c *rcors) allowed(origin string) bool {
	if c == nil || origin == "" {
		return false
	}
	for _, m := range c.origins {
		if m.match(origin) {
			return true
		}
	}
	return false
}

// preflightHeaders are the answer to an allowed preflight request.
func (c *rcors) preflightHeaders(origin string) [][2]string {
	h := [][2]string{{"Access-Control-Allow-Origin", origin}}
	for _, kv := range [][2]string{{"Access-Control-Allow-Methods", c.methods}, {"Access-Control-Allow-Headers", c.headers}, {"Access-Control-Max-Age", c.maxAge}} {
		if kv[1] != "" {
			h = append(h, kv)
		}
	}
	if c.credentials {
		h = append(h, [2]string{"Access-Control-Allow-Credentials", "true"})
	}
	return h
}

// responseHeaders are added to an allowed cross-origin response.
func (c *rcors) responseHeaders(origin string) [][2]string {
	h := [][2]string{{"Access-Control-Allow-Origin", origin}}
	if c.expose != "" {
		h = append(h, [2]string{"Access-Control-Expose-Headers", c.expose})
	}
	if c.credentials {
		h = append(h, [2]string{"Access-Control-Allow-Credentials", "true"})
	}
	return h
}

// isPreflight is a CORS preflight: OPTIONS with Origin and Access-Control-Request-Method.
func isPreflight(method, origin, requestMethod string) bool {
	return method == http.MethodOptions && origin != "" && requestMethod != ""
}

// withCORS returns edits plus the CORS response headers (set, replacing).
func withCORS(e *headerEdits, kv [][2]string) *headerEdits {
	if len(kv) == 0 {
		return e
	}
	out := &headerEdits{}
	if e != nil {
		out.remove = e.remove
		out.edits = append(out.edits, e.edits...)
	}
	for _, h := range kv {
		out.edits = append(out.edits, headerEdit{name: h[0], value: h[1]})
	}
	return out
}
