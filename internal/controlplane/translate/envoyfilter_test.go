package translate

import (
	"os"
	"testing"

	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
)

// TestLocalRateLimitEnvoyFilter: Istio's EnvoyFilter puts the local rate
// limit filter before the router of productpage's inbound chains only.
func TestLocalRateLimitEnvoyFilter(t *testing.T) {
	ef, err := os.ReadFile("../../../test/e2e/testdata/local-ratelimit.yaml")
	if err != nil {
		t.Fatal(err)
	}
	filters := func(out *Output) map[string][]string {
		got := map[string][]string{}
		eachHCM(out, func(l *listener.Listener, m *hcm.HttpConnectionManager) {
			for _, hf := range m.GetHttpFilters() {
				got[l.GetName()] = append(got[l.GetName()], hf.GetName())
			}
		})
		return got
	}
	got := filters(buildFor(t, string(ef), Mesh{}))
	in := got[VirtualInbound]
	if len(in) < 2 || in[len(in)-2] != "envoy.filters.http.local_ratelimit" || in[len(in)-1] != "envoy.filters.http.router" {
		t.Fatalf("productpage's inbound filters: %v, want the rate limit just before the router", in)
	}
	for name, fs := range got {
		if name == VirtualInbound {
			continue
		}
		for _, f := range fs {
			if f == "envoy.filters.http.local_ratelimit" {
				t.Errorf("outbound listener %s got the inbound-only filter", name)
			}
		}
	}
}
