package dataplane

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// mesh is a client sidecar, a server sidecar in front of app v1, and app v2
// without a sidecar, all on random loopback IPs.
type mesh struct {
	client, server *Dataplane
	clientIP       netip.Addr
	v1, v2         netip.AddrPort
	port           uint16 // v1's port: the service port
}

// appHandler answers with its name and the path it saw.
func appHandler(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/slow") {
			time.Sleep(300 * time.Millisecond)
		}
		if strings.HasPrefix(r.URL.Path, "/headers") {
			fmt.Fprintf(w, "x-set=%v x-add=%v x-gone=%v\n", r.Header.Values("x-set"), r.Header.Values("x-add"), r.Header.Values("x-gone"))
		}
		w.Header().Set("x-app", name)
		fmt.Fprintf(w, "%s %s %s", name, r.Host, r.URL.RequestURI())
	})
}

func newMesh(t *testing.T) *mesh { return newMeshTB(t) }

func newMeshTB(t testing.TB) *mesh { return newMeshTel(t, Telemetry{}, Telemetry{}, appHandler("v1")) }

// newMeshTel is a mesh whose sidecars report to clientTel and serverTel, with v1 serving h.
func newMeshTel(t testing.TB, clientTel, serverTel Telemetry, v1 http.Handler) *mesh {
	m := &mesh{clientIP: randIP()}
	serverIP := randIP()
	m.v1 = startApp(t, serverIP, v1)
	m.v2 = startApp(t, randIP(), appHandler("v2"))
	m.port = m.v1.Port()
	m.client = newTestDataplaneTel(t, ModeSidecar, m.clientIP, clientTel)
	m.server = newTestDataplaneTel(t, ModeSidecar, serverIP, serverTel)

	inbound := fmt.Sprintf("inbound|%d||", m.port)
	apply(t, m.server, clusterType, append(specialClusters(), staticCluster(t, inbound, m.v1, false))...)
	apply(t, m.server, listenerType, inboundListener(t, serverIP, m.port))

	svc := fmt.Sprintf("outbound|%d||reviews.default.svc.cluster.local", m.port)
	sub := func(s string) string {
		return fmt.Sprintf("outbound|%d|%s|reviews.default.svc.cluster.local", m.port, s)
	}
	apply(t, m.client, clusterType, append(specialClusters(), edsCluster(t, svc, false), edsCluster(t, sub("v1"), false),
		edsCluster(t, sub("v2"), false), edsCluster(t, sub("none"), false))...)
	apply(t, m.client, endpointType, cla(svc, true, m.v1), cla(sub("v1"), true, m.v1), cla(sub("v2"), false, m.v2), cla(sub("none"), true))
	apply(t, m.client, listenerType, outboundListener(t, m.clientIP), httpListener(t, m.port, fmt.Sprint(m.port), false))
	apply(t, m.client, routeType, m.routes())
	if !m.client.Ready() || !m.server.Ready() {
		t.Fatal("data planes not ready after LDS, RDS and CDS")
	}
	return m
}

func (m *mesh) routes() *route.RouteConfiguration {
	sub := func(s string) string {
		return fmt.Sprintf("outbound|%d|%s|reviews.default.svc.cluster.local", m.port, s)
	}
	jason := prefixRoute("jason", "/", sub("v2"))
	jason.Match.Headers = []*route.HeaderMatcher{{Name: "end-user", HeaderMatchSpecifier: &route.HeaderMatcher_StringMatch{
		StringMatch: &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Exact{Exact: "jason"}}}}}
	split := prefixRoute("split", "/split", "")
	split.Action = &route.Route_Route{Route: &route.RouteAction{ClusterSpecifier: &route.RouteAction_WeightedClusters{
		WeightedClusters: &route.WeightedCluster{Clusters: []*route.WeightedCluster_ClusterWeight{
			{Name: sub("v1"), Weight: wrapperspb.UInt32(75)}, {Name: sub("v2"), Weight: wrapperspb.UInt32(25)}}}}}}
	p := fmt.Sprint(m.port)
	return &route.RouteConfiguration{Name: p, VirtualHosts: []*route.VirtualHost{
		{Name: "reviews.default.svc.cluster.local:" + p, Domains: []string{"reviews", "reviews:" + p, "reviews.default.svc.cluster.local"},
			Routes: []*route.Route{jason, split, prefixRoute("none", "/none", sub("none")),
				prefixRoute("hole", "/hole", "BlackHoleCluster"), prefixRoute("default", "/api", fmt.Sprintf("outbound|%d||reviews.default.svc.cluster.local", m.port))}},
		{Name: "allow_any", Domains: []string{"*"}, Routes: []*route.Route{prefixRoute("allow_any", "/", "PassthroughCluster")}},
	}}
}

// proxyClient sends absolute-form requests to the client sidecar's capture port.
func (m *mesh) proxyClient() *http.Client {
	u := &url.URL{Scheme: "http", Host: netip.AddrPortFrom(m.clientIP, testOutbound).String()}
	return &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(u)}}
}

func get(t *testing.T, c *http.Client, target string, hdr ...string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest("GET", target, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", target, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func TestSidecarPairRouting(t *testing.T) {
	m := newMesh(t)
	c := m.proxyClient()
	svc := fmt.Sprintf("http://reviews:%d", m.port)
	cases := []struct {
		name, target, user string
		code               int
		body, flag         string
	}{
		{"default route through the tunnel", svc + "/api/1", "", 200, "v1 reviews:" + fmt.Sprint(m.port) + " /api/1", ""},
		{"header match to v2 without sidecar", svc + "/api/1", "jason", 200, "v2 ", ""},
		{"query kept", svc + "/api/q?x=1", "", 200, "/api/q?x=1", ""},
		{"no route", svc + "/nothing", "", 404, "", "NR"},
		{"no healthy upstream", svc + "/none", "", 503, "no healthy upstream", "UH"},
		{"black hole", svc + "/hole", "", 503, "no healthy upstream", "UH"},
		{"passthrough to an unknown host", "http://" + m.v2.String() + "/direct", "", 200, "v2 " + m.v2.String() + " /direct", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, body, h := get(t, c, tc.target, "end-user", tc.user)
			if code != tc.code || !strings.Contains(body, tc.body) || h.Get("x-weft-response-flags") != tc.flag {
				t.Errorf("got %d %q flags %q, want %d containing %q flags %q", code, body, h.Get("x-weft-response-flags"), tc.code, tc.body, tc.flag)
			}
		})
	}
	// v1 was reached through the server sidecar's inbound port (the tunnel).
	for _, cs := range m.server.Clusters() {
		if cs.Name == fmt.Sprintf("inbound|%d||", m.port) && (len(cs.Endpoints) != 1 || cs.Endpoints[0].TotalRequests < 2) {
			t.Errorf("inbound cluster status %+v: want the tunnelled requests counted", cs)
		}
	}
}

// rawExchange writes raw bytes to the capture port and reads one response.
func rawExchange(t *testing.T, addr netip.AddrPort, lines ...string) (*http.Response, string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	br := bufio.NewReader(conn)
	var resp *http.Response
	for _, l := range lines {
		if _, err := io.WriteString(conn, l); err != nil {
			t.Fatal(err)
		}
		if resp, err = http.ReadResponse(br, nil); err != nil {
			t.Fatalf("reading the response to %q: %v", l, err)
		}
	}
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestCaptureForms(t *testing.T) {
	m := newMesh(t)
	capture := netip.AddrPortFrom(m.clientIP, testOutbound)
	p := fmt.Sprint(m.port)
	cases := []struct {
		name  string
		lines []string
		want  string
	}{
		{"origin-form with Host", []string{"GET /api/o HTTP/1.1\r\nHost: reviews:" + p + "\r\n\r\n"}, "v1 reviews:" + p + " /api/o"},
		{"CONNECT then HTTP/1.1", []string{"CONNECT reviews:" + p + " HTTP/1.1\r\nHost: reviews:" + p + "\r\n\r\n",
			"GET /api/c HTTP/1.1\r\nHost: reviews:" + p + "\r\n\r\n"}, "v1 reviews:" + p + " /api/c"},
		{"CONNECT to an unknown port is spliced", []string{"CONNECT " + m.v2.String() + " HTTP/1.1\r\nHost: x\r\n\r\n",
			"GET /raw HTTP/1.1\r\nHost: raw\r\n\r\n"}, "v2 raw /raw"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := rawExchange(t, capture, tc.lines...)
			if resp.StatusCode != 200 || body != tc.want {
				t.Errorf("got %d %q, want 200 %q", resp.StatusCode, body, tc.want)
			}
		})
	}
}

func TestWeightedSplitThroughPair(t *testing.T) {
	m := newMesh(t)
	c := m.proxyClient()
	counts := map[string]int{}
	const n = 400
	for range n {
		_, _, h := get(t, c, fmt.Sprintf("http://reviews:%d/split", m.port))
		counts[h.Get("x-app")]++
	}
	// 75/25 of 400: mean 300, sd ~8.7; ±6 sd.
	if counts["v1"] < 248 || counts["v1"] > 352 || counts["v1"]+counts["v2"] != n {
		t.Errorf("75/25 split gave %v", counts)
	}
}

func TestNACKKeepsServing(t *testing.T) {
	m := newMesh(t)
	c := m.proxyClient()
	bad := []struct {
		typeURL string
		res     proto.Message
		want    string
	}{
		{listenerType, &listener.Listener{Name: "bad", Address: sock("0.0.0.0", 1),
			FilterChains: []*listener.FilterChain{{Filters: []*listener.Filter{filter(t, "envoy.filters.network.redis_proxy", &route.Route{})}}}}, "bad"},
		{listenerType, &listener.Listener{Name: "unbindable", Address: sock("192.0.2.1", 9999)}, "unbindable"},
		{routeType, &route.RouteConfiguration{Name: fmt.Sprint(m.port), VirtualHosts: []*route.VirtualHost{{Name: "v", Domains: []string{"*"},
			Routes: []*route.Route{{Match: &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/"}},
				Action: &route.Route_FilterAction{FilterAction: &route.FilterAction{}}}}}}}, "filter_action"},
	}
	for _, b := range bad {
		err := m.client.Update(b.typeURL, "bad", named(b.res))
		if err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("Update(%T): got %v, want an error naming %q", b.res, err, b.want)
		}
		if code, body, _ := get(t, c, fmt.Sprintf("http://reviews:%d/api/after", m.port)); code != 200 || !strings.HasPrefix(body, "v1") {
			t.Errorf("after a NACK: got %d %q", code, body)
		}
	}
}

// TestRouteTimeout: a route's timeout bounds the upstream exchange (504 UT);
// an explicit 0 disables it, as Istio sets by default.
func TestRouteTimeout(t *testing.T) {
	m := newMesh(t)
	rc := m.routes()
	svc := fmt.Sprintf("outbound|%d||reviews.default.svc.cluster.local", m.port)
	short, none := prefixRoute("short", "/slow/short", svc), prefixRoute("none", "/slow/none", svc)
	short.GetRoute().Timeout = durationpb.New(50 * time.Millisecond)
	none.GetRoute().Timeout = durationpb.New(0)
	vh := rc.VirtualHosts[0]
	vh.Routes = append([]*route.Route{short, none}, vh.Routes...)
	apply(t, m.client, routeType, rc)
	c := m.proxyClient()
	base := fmt.Sprintf("http://reviews:%d", m.port)
	// Envoy's answer; the UT flag goes to the exchange's result (access logs).
	code, body, _ := get(t, c, base+"/slow/short")
	if code != http.StatusGatewayTimeout || body != "upstream request timeout" {
		t.Errorf("50ms timeout on a 300ms app: got %d %q, want 504 upstream request timeout", code, body)
	}
	if code, body, _ := get(t, c, base+"/slow/none"); code != http.StatusOK || !strings.HasPrefix(body, "v1") {
		t.Errorf("timeout 0 (disabled): got %d %q, want 200 from v1", code, body)
	}
}
