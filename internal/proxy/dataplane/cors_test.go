package dataplane

import (
	"fmt"
	"net/http"
	"testing"

	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	corsfilter "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/cors/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// TestCORS: preflights from an allowed origin are answered by the proxy;
// allowed cross-origin responses get the CORS headers; others pass untouched.
func TestCORS(t *testing.T) {
	m := newMesh(t)
	l := httpListener(t, m.port, fmt.Sprint(m.port), false)
	h := &hcm.HttpConnectionManager{}
	if err := l.FilterChains[0].Filters[0].GetTypedConfig().UnmarshalTo(h); err != nil {
		t.Fatal(err)
	}
	h.HttpFilters = append([]*hcm.HttpFilter{{Name: corsFilter,
		ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: mustAny(t, &corsfilter.Cors{})}}}, h.HttpFilters...)
	l.FilterChains[0].Filters[0].ConfigType = filter(t, l.FilterChains[0].Filters[0].Name, h).ConfigType
	apply(t, m.client, listenerType, outboundListener(t, m.clientIP), l)

	svc := fmt.Sprintf("outbound|%d||reviews.default.svc.cluster.local", m.port)
	r := prefixRoute("cors", "/api", svc)
	r.TypedPerFilterConfig = map[string]*anypb.Any{corsFilter: mustAny(t, &corsfilter.CorsPolicy{
		AllowOriginStringMatch: []*matcher.StringMatcher{{MatchPattern: &matcher.StringMatcher_Exact{Exact: "https://example.com"}}},
		AllowMethods:           "GET,POST", AllowHeaders: "x-user", ExposeHeaders: "x-app", MaxAge: "600",
		AllowCredentials: wrapperspb.Bool(true),
	})}
	rc := m.routes()
	rc.VirtualHosts[0].Routes = append([]*route.Route{r}, rc.VirtualHosts[0].Routes...)
	apply(t, m.client, routeType, rc)

	c := m.proxyClient()
	url := fmt.Sprintf("http://reviews:%d/api/x", m.port)
	do := func(method, origin string) *http.Response {
		req, _ := http.NewRequest(method, url, nil)
		req.Header.Set("Origin", origin)
		if method == http.MethodOptions {
			req.Header.Set("Access-Control-Request-Method", "POST")
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	pre := do(http.MethodOptions, "https://example.com")
	if pre.StatusCode != 200 || pre.Header.Get("Access-Control-Allow-Methods") != "GET,POST" || pre.Header.Get("Access-Control-Max-Age") != "600" ||
		pre.Header.Get("x-app") != "" {
		t.Errorf("preflight: got %d %v, want 200 from the proxy with the policy", pre.StatusCode, pre.Header)
	}
	get := do(http.MethodGet, "https://example.com")
	if get.Header.Get("Access-Control-Allow-Origin") != "https://example.com" || get.Header.Get("Access-Control-Expose-Headers") != "x-app" ||
		get.Header.Get("Access-Control-Allow-Credentials") != "true" || get.Header.Get("x-app") != "v1" {
		t.Errorf("allowed origin: headers %v", get.Header)
	}
	other := do(http.MethodGet, "https://evil.example")
	if other.Header.Get("Access-Control-Allow-Origin") != "" || other.Header.Get("x-app") != "v1" {
		t.Errorf("other origin: headers %v, want no CORS headers", other.Header)
	}
}
