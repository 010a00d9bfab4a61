package dataplane

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	faultcommon "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/common/fault/v3"
	faultfilter "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
)

func all() *typev3.FractionalPercent {
	return &typev3.FractionalPercent{Numerator: 100, Denominator: typev3.FractionalPercent_HUNDRED}
}

func withFault(t *testing.T, r *route.Route, f *faultfilter.HTTPFault) *route.Route {
	r.TypedPerFilterConfig = map[string]*anypb.Any{faultFilter: mustAny(t, f)}
	return r
}

// TestFaultInjection: per-route abort and delay, as Istio's fault injection
// sets them, through a sidecar pair whose listener has the fault filter.
func TestFaultInjection(t *testing.T) {
	m := newMesh(t)
	l := httpListener(t, m.port, fmt.Sprint(m.port), false)
	chain := l.FilterChains[0]
	h := &hcm.HttpConnectionManager{}
	if err := chain.Filters[0].GetTypedConfig().UnmarshalTo(h); err != nil {
		t.Fatal(err)
	}
	h.HttpFilters = append([]*hcm.HttpFilter{{Name: faultFilter,
		ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: mustAny(t, &faultfilter.HTTPFault{})}}}, h.HttpFilters...)
	chain.Filters[0].ConfigType = filter(t, chain.Filters[0].Name, h).ConfigType
	apply(t, m.client, listenerType, outboundListener(t, m.clientIP), l)

	svc := fmt.Sprintf("outbound|%d||reviews.default.svc.cluster.local", m.port)
	rc := m.routes()
	abort := withFault(t, prefixRoute("abort", "/abort", svc), &faultfilter.HTTPFault{
		Abort: &faultfilter.FaultAbort{ErrorType: &faultfilter.FaultAbort_HttpStatus{HttpStatus: 500}, Percentage: all()}})
	delay := withFault(t, prefixRoute("delay", "/delay", svc), &faultfilter.HTTPFault{
		Delay: &faultcommon.FaultDelay{FaultDelaySecifier: &faultcommon.FaultDelay_FixedDelay{FixedDelay: durationpb.New(100 * time.Millisecond)},
			Percentage: all()}})
	never := withFault(t, prefixRoute("never", "/never", svc), &faultfilter.HTTPFault{
		Abort: &faultfilter.FaultAbort{ErrorType: &faultfilter.FaultAbort_HttpStatus{HttpStatus: 503},
			Percentage: &typev3.FractionalPercent{Numerator: 0}}})
	rc.VirtualHosts[0].Routes = append([]*route.Route{abort, delay, never}, rc.VirtualHosts[0].Routes...)
	apply(t, m.client, routeType, rc)

	c := m.proxyClient()
	base := fmt.Sprintf("http://reviews:%d", m.port)
	if code, body, h := get(t, c, base+"/abort"); code != http.StatusInternalServerError || body != faultAbortBody || h.Get("x-weft-response-flags") != "FI" {
		t.Errorf("abort: got %d %q flags %q, want 500 %q FI", code, body, h.Get("x-weft-response-flags"), faultAbortBody)
	}
	start := time.Now()
	if code, body, _ := get(t, c, base+"/delay"); code != http.StatusOK || !strings.HasPrefix(body, "v1") {
		t.Errorf("delay: got %d %q, want 200 from v1", code, body)
	}
	// A lower bound only: the delay must have happened; no upper bound is asserted.
	if waited := time.Since(start); waited < 100*time.Millisecond {
		t.Errorf("delay: answered after %s, before the 100ms fault delay", waited)
	}
	for range 20 {
		if code, _, _ := get(t, c, base+"/never"); code != http.StatusOK {
			t.Fatalf("0%% abort: got %d", code)
		}
	}
}

func TestFaultRefused(t *testing.T) {
	cases := []struct {
		name string
		f    *faultfilter.HTTPFault
		want string
	}{
		{"bad status", &faultfilter.HTTPFault{Abort: &faultfilter.FaultAbort{ErrorType: &faultfilter.FaultAbort_HttpStatus{HttpStatus: 42}}}, "http_status 42"},
		{"header delay", &faultfilter.HTTPFault{Delay: &faultcommon.FaultDelay{FaultDelaySecifier: &faultcommon.FaultDelay_HeaderDelay_{}}}, "fixed_delay"},
		{"upstream cluster", &faultfilter.HTTPFault{UpstreamCluster: "x"}, "only delay and abort"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := compileFault(withFault(t, prefixRoute("r", "/", "c"), tc.f))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error naming %q", err, tc.want)
			}
		})
	}
}
