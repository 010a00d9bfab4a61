package dataplane

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
)

// benchTable is a Bookinfo-sized route config: 20 services on a port, the
// last one with header, regex and prefix routes.
func benchTable(b *testing.B) *rtable {
	rc := &route.RouteConfiguration{Name: "9080"}
	for i := range 20 {
		name := fmt.Sprintf("svc%d", i)
		vh := &route.VirtualHost{Name: name, Domains: []string{name, name + ":9080", name + ".default.svc.cluster.local", name + ".default.svc.cluster.local:9080"}}
		jason := prefixRoute("jason", "/", name+"-v2")
		jason.Match.Headers = []*route.HeaderMatcher{{Name: "end-user", HeaderMatchSpecifier: &route.HeaderMatcher_StringMatch{
			StringMatch: &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Exact{Exact: "jason"}}}}}
		vh.Routes = []*route.Route{jason,
			{Name: "regex", Match: &route.RouteMatch{PathSpecifier: &route.RouteMatch_SafeRegex{SafeRegex: &matcher.RegexMatcher{Regex: "/ratings/[0-9]+"}}}, Action: clusterAction(name + "-r")},
			prefixRoute("default", "/", name)}
		rc.VirtualHosts = append(rc.VirtualHosts, vh)
	}
	rc.VirtualHosts = append(rc.VirtualHosts, &route.VirtualHost{Name: "allow_any", Domains: []string{"*"}, Routes: []*route.Route{prefixRoute("any", "/", "PassthroughCluster")}})
	t, err := compileRoutes(rc)
	if err != nil {
		b.Fatal(err)
	}
	return t
}

func BenchmarkRouteMatch(b *testing.B) {
	t := benchTable(b)
	cases := []struct{ name, host, target string }{
		{"default", "svc19:9080", "/reviews/0"},
		{"regex", "svc19:9080", "/ratings/12"},
		{"allow_any", "other:9080", "/"},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			r := httptest.NewRequest("GET", "http://"+tc.host+tc.target, nil)
			b.ReportAllocs()
			for b.Loop() {
				if vh := t.vhost(tc.host); vh == nil || vh.route((*stdRequest)(r)) == nil {
					b.Fatal("no route")
				}
			}
		})
	}
}

func benchEndpoints(n int) []*rendpoint {
	eps := make([]*rendpoint, n)
	for i := range eps {
		ap := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 1, byte(i + 1)}), 9080)
		eps[i] = &rendpoint{addr: ap.String(), ap: ap, weight: 1, stats: &endpointStats{}}
	}
	return eps
}

func BenchmarkLoadBalancers(b *testing.B) {
	eps := benchEndpoints(16)
	st := &state{}
	lbs := []struct {
		name string
		p    picker
	}{
		{"round_robin", newRoundRobin(eps, st.rrPosition("c"))},
		{"least_request", leastRequest{}},
		{"random", random{}},
		{"ring_hash", newRingHash(eps, defaultMinRingSize)},
		{"maglev", newMaglev(eps, defaultMaglevSize)},
	}
	for _, lb := range lbs {
		b.Run(lb.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if lb.p.pick(eps) == nil {
						b.Fatal("no endpoint")
					}
				}
			})
		})
	}
	for _, lb := range lbs[3:] {
		h := lb.p.(hasher)
		b.Run(lb.name+"_by_hash", func(b *testing.B) {
			b.ReportAllocs()
			v := hash64("user-42")
			for b.Loop() {
				if h.pickHash(eps, v) == nil {
					b.Fatal("no endpoint")
				}
			}
		})
	}
}

// BenchmarkSidecarPair measures a keep-alive GET through a client sidecar,
// the tunnel and a server sidecar, beside the same GET straight to the app.
func BenchmarkSidecarPair(b *testing.B) {
	b.Run("direct", func(b *testing.B) { benchGets(b, false) })
	b.Run("pair", func(b *testing.B) { benchGets(b, true) })
}

func benchGets(b *testing.B, viaPair bool) {
	tb := testing.TB(b)
	m := newMeshTB(tb)
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	target := "http://" + m.v1.String() + "/api/x"
	if viaPair {
		c = m.proxyClient()
		target = fmt.Sprintf("http://reviews:%d/api/x", m.port)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := c.Get(target)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}
