package dataplane

import (
	"fmt"
	"net/http"
	"net/netip"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	rlcommon "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	localrl "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/local_ratelimit/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func bucket(n uint32) *typev3.TokenBucket {
	return &typev3.TokenBucket{MaxTokens: n, TokensPerFill: wrapperspb.UInt32(n), FillInterval: durationpb.New(time.Hour)}
}

var everyone = &core.RuntimeFractionalPercent{DefaultValue: &typev3.FractionalPercent{Numerator: 100}}

// TestLocalRateLimit follows Istio's local rate limiting task: a filter-wide
// bucket answers 429 (flag RL) with the configured header once empty; a
// route's own config replaces it; descriptors give one user its own bucket.
func TestLocalRateLimit(t *testing.T) {
	ip := randIP()
	app := startApp(t, randIP(), appHandler("app"))
	client := newTestDataplane(t, ModeSidecar, ip)
	port := app.Port()
	svc := fmt.Sprintf("outbound|%d||svc.default.svc.cluster.local", port)
	apply(t, client, clusterType, append(specialClusters(), edsCluster(t, svc, false))...)
	apply(t, client, endpointType, cla(svc, false, app))
	filterCfg := &localrl.LocalRateLimit{StatPrefix: "http_local_rate_limiter", TokenBucket: bucket(3), FilterEnabled: everyone, FilterEnforced: everyone,
		ResponseHeadersToAdd: []*core.HeaderValueOption{{Header: &core.HeaderValue{Key: "x-local-rate-limit", Value: "true"}}},
		Descriptors:          []*rlcommon.LocalRateLimitDescriptor{{Entries: []*rlcommon.RateLimitDescriptor_Entry{{Key: "user", Value: "alice"}}, TokenBucket: bucket(1)}}}
	l := httpListener(t, port, fmt.Sprint(port), false)
	m := &hcm.HttpConnectionManager{}
	if err := l.FilterChains[0].Filters[0].GetTypedConfig().UnmarshalTo(m); err != nil {
		t.Fatal(err)
	}
	rlAny, _ := anypb.New(filterCfg)
	m.HttpFilters = append([]*hcm.HttpFilter{{Name: localRateLimitFilter, ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: rlAny}}}, m.HttpFilters...)
	l.FilterChains[0].Filters[0] = filter(t, "envoy.filters.network.http_connection_manager", m)
	apply(t, client, listenerType, outboundListener(t, ip), l)
	free := prefixRoute("free", "/free", svc)
	freeAny, _ := anypb.New(&localrl.LocalRateLimit{StatPrefix: "free", TokenBucket: bucket(100), FilterEnabled: everyone, FilterEnforced: everyone})
	free.TypedPerFilterConfig = map[string]*anypb.Any{localRateLimitFilter: freeAny}
	users := prefixRoute("users", "/users", svc)
	users.GetRoute().RateLimits = []*route.RateLimit{{Actions: []*route.RateLimit_Action{{ActionSpecifier: &route.RateLimit_Action_RequestHeaders_{
		RequestHeaders: &route.RateLimit_Action_RequestHeaders{HeaderName: "x-user", DescriptorKey: "user"}}}}}}
	authority := fmt.Sprintf("svc:%d", port)
	apply(t, client, routeType, &route.RouteConfiguration{Name: fmt.Sprint(port), VirtualHosts: []*route.VirtualHost{{
		Name: "svc", Domains: []string{authority}, Routes: []*route.Route{free, users, prefixRoute("default", "/", svc)}}}})
	c := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(mustURL("http://" + netip.AddrPortFrom(ip, testOutbound).String()))}}
	do := func(path, user string) (int, string, http.Header) {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+authority+path, nil)
		if user != "" {
			req.Header.Set("x-user", user)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b [64]byte
		n, _ := resp.Body.Read(b[:])
		return resp.StatusCode, string(b[:n]), resp.Header
	}
	// The route with its own bucket of 100 is untouched by the filter's 3.
	for range 10 {
		if code, _, _ := do("/free", ""); code != 200 {
			t.Fatalf("/free: %d", code)
		}
	}
	// alice has a descriptor bucket of 1; bob and the rest share the filter's 3.
	if code, _, _ := do("/users", "alice"); code != 200 {
		t.Fatal("alice's first request must pass")
	}
	if code, body, h := do("/users", "alice"); code != 429 || body != rateLimitedBody || h.Get("x-local-rate-limit") != "true" || h.Get("x-weft-response-flags") != "RL" {
		t.Fatalf("alice's second request: %d %q %v, want 429 local_rate_limited with x-local-rate-limit", code, body, h)
	}
	codes := map[int]int{}
	for range 5 {
		code, _, _ := do("/", "")
		codes[code]++
	}
	if codes[200] != 3 || codes[429] != 2 {
		t.Fatalf("the filter's bucket of 3 over 5 requests: %v", codes)
	}
	// The bucket survives a config push that does not change it.
	apply(t, client, listenerType, outboundListener(t, ip), l)
	if code, _, _ := do("/", ""); code != 429 {
		t.Fatalf("after a re-push the bucket must still be empty, got %d", code)
	}
}
