package dataplane

import (
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/types/known/durationpb"
)

func testEndpoints(n int) []*rendpoint {
	eps := make([]*rendpoint, n)
	for i := range eps {
		eps[i] = &rendpoint{addr: fmt.Sprintf("10.0.0.%d:9080", i+1), weight: 1, stats: &endpointStats{}}
	}
	return eps
}

// TestHashBalancers checks both consistent-hash balancers: a key always
// maps to the same endpoint, keys spread evenly, and removing one endpoint
// of four moves only about the keys it had.
func TestHashBalancers(t *testing.T) {
	builders := map[string]func([]*rendpoint) hasher{
		"ring hash": func(eps []*rendpoint) hasher { return newRingHash(eps, defaultMinRingSize) },
		"maglev":    func(eps []*rendpoint) hasher { return newMaglev(eps, defaultMaglevSize) },
	}
	for name, build := range builders {
		t.Run(name, func(t *testing.T) {
			eps := testEndpoints(4)
			h := build(eps)
			const keys = 4000
			count := map[string]int{}
			before := make([]string, keys)
			for k := range keys {
				v := hash64("user-" + strconv.Itoa(k))
				ep := h.pickHash(eps, v)
				if again := h.pickHash(eps, v); again != ep {
					t.Fatal("the same hash picked two endpoints")
				}
				count[ep.addr]++
				before[k] = ep.addr
			}
			// 1000 each on average; a consistent hash should stay within ±30%.
			for addr, n := range count {
				if n < 700 || n > 1300 {
					t.Errorf("%s got %d of %d keys: %v", addr, n, keys, count)
				}
			}
			smaller := eps[:3]
			h2 := build(smaller)
			moved := 0
			for k := range keys {
				if before[k] != eps[3].addr && h2.pickHash(smaller, hash64("user-"+strconv.Itoa(k))).addr != before[k] {
					moved++
				}
			}
			// Keys not on the removed endpoint should mostly stay put (the ring
			// rescales each host's points to its minimum size, as Envoy's does,
			// so some move: about an eighth).
			if moved > keys/5 {
				t.Errorf("%d of %d keys moved that did not have to", moved, keys)
			}
		})
	}
}

// TestConsistentHashThroughSidecar sends requests with a user header and
// a hash cookie through a sidecar to a ring-hash cluster of three apps.
func TestConsistentHashThroughSidecar(t *testing.T) {
	ip := randIP()
	var apps []netip.AddrPort
	for i := range 3 {
		apps = append(apps, startApp(t, randIP(), appHandler(fmt.Sprintf("app%d", i))))
	}
	port := apps[0].Port()
	client := newTestDataplane(t, ModeSidecar, ip)
	name := fmt.Sprintf("outbound|%d||svc.default.svc.cluster.local", port)
	c := edsCluster(t, name, false)
	c.LbPolicy = cluster.Cluster_RING_HASH
	apply(t, client, clusterType, append(specialClusters(), c)...)
	apply(t, client, endpointType, cla(name, false, apps...))
	apply(t, client, listenerType, outboundListener(t, ip), httpListener(t, port, fmt.Sprint(port), false))
	byHeader := prefixRoute("header", "/h", name)
	byHeader.GetRoute().HashPolicy = []*route.RouteAction_HashPolicy{{PolicySpecifier: &route.RouteAction_HashPolicy_Header_{
		Header: &route.RouteAction_HashPolicy_Header{HeaderName: "x-user"}}}}
	byCookie := prefixRoute("cookie", "/c", name)
	byCookie.GetRoute().HashPolicy = []*route.RouteAction_HashPolicy{{PolicySpecifier: &route.RouteAction_HashPolicy_Cookie_{
		Cookie: &route.RouteAction_HashPolicy_Cookie{Name: "affinity", Ttl: durationpb.New(3600e9)}}}}
	authority := fmt.Sprintf("svc:%d", port)
	apply(t, client, routeType, &route.RouteConfiguration{Name: fmt.Sprint(port), VirtualHosts: []*route.VirtualHost{{
		Name: "svc", Domains: []string{authority}, Routes: []*route.Route{byHeader, byCookie}}}})
	hc := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(mustURL("http://" + netip.AddrPortFrom(ip, testOutbound).String()))}}
	get := func(path string, hdr ...string) (string, http.Header) {
		req, _ := http.NewRequest("GET", "http://"+authority+path, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		app, _, _ := strings.Cut(string(b), " ")
		return app, resp.Header
	}
	users := map[string]bool{}
	for u := range 12 {
		first, _ := get("/h", "x-user", fmt.Sprint("user", u))
		for range 5 {
			if app, _ := get("/h", "x-user", fmt.Sprint("user", u)); app != first {
				t.Fatalf("user%d went to %s then %s", u, first, app)
			}
		}
		users[first] = true
	}
	if len(users) < 2 {
		t.Fatalf("12 users all hashed to %v", users)
	}
	app, h := get("/c")
	cookie := h.Get("Set-Cookie")
	if !strings.HasPrefix(cookie, "affinity=") || !strings.Contains(cookie, "Max-Age=3600") {
		t.Fatalf("a missing hash cookie with a TTL must be generated, got Set-Cookie %q", cookie)
	}
	val := strings.TrimPrefix(strings.Split(cookie, ";")[0], "affinity=")
	for range 5 {
		if again, h := get("/c", "Cookie", "affinity="+val); again != app || h.Get("Set-Cookie") != "" {
			t.Fatalf("with the generated cookie: %s (Set-Cookie %q), first %s", again, h.Get("Set-Cookie"), app)
		}
	}
}
