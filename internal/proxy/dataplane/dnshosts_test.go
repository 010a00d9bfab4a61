package dataplane

import (
	"net/netip"
	"testing"

	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"github.com/google/go-cmp/cmp"
)

func TestDNSHosts(t *testing.T) {
	t.Parallel()
	routes := map[string]*route.RouteConfiguration{
		"9080": {Name: "9080", VirtualHosts: []*route.VirtualHost{
			{Name: "reviews.default.svc.cluster.local:9080", Domains: []string{
				"reviews.default.svc.cluster.local", "reviews", "reviews:9080", "10.96.0.20", "10.96.0.20:9080", "[fd00::20]", "[fd00::20]:9080"}},
			{Name: "ratings.default.svc.cluster.local:9080", Domains: []string{"ratings", "ratings:9080"}},
			{Name: "allow_any", Domains: []string{"*"}},
		}},
		"443": {Name: "443", VirtualHosts: []*route.VirtualHost{
			{Name: "API.example.com:443", Domains: []string{"api.example.com", "240.240.0.1:443"}},
			{Name: "*.wild.example.com:443", Domains: []string{"*.wild.example.com", "240.240.0.2"}},
			{Name: "10.1.1.1:443", Domains: []string{"10.1.1.1"}},
		}},
	}
	want := map[string][]netip.Addr{
		"reviews.default.svc.cluster.local": {netip.MustParseAddr("10.96.0.20"), netip.MustParseAddr("fd00::20")},
		"api.example.com":                   {netip.MustParseAddr("240.240.0.1")},
	}
	if d := cmp.Diff(want, dnsHosts(routes), cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); d != "" {
		t.Errorf("dnsHosts (-want +got):\n%s", d)
	}
}
