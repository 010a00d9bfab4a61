package dataplane

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// TestHeaderEdits: a route sets, appends and removes request and response
// headers, as Istio's VirtualService headers do.
func TestHeaderEdits(t *testing.T) {
	m := newMesh(t)
	svc := fmt.Sprintf("outbound|%d||reviews.default.svc.cluster.local", m.port)
	r := prefixRoute("headers", "/headers", svc)
	set := func(k, v string) *core.HeaderValueOption {
		return &core.HeaderValueOption{Header: &core.HeaderValue{Key: k, Value: v}, AppendAction: core.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD}
	}
	add := func(k, v string) *core.HeaderValueOption {
		return &core.HeaderValueOption{Header: &core.HeaderValue{Key: k, Value: v}, AppendAction: core.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD}
	}
	r.RequestHeadersToAdd = []*core.HeaderValueOption{set("x-set", "mesh"), add("x-add", "mesh")}
	r.RequestHeadersToRemove = []string{"x-gone"}
	r.ResponseHeadersToAdd = []*core.HeaderValueOption{set("x-resp", "yes")}
	r.ResponseHeadersToRemove = []string{"x-app"}
	rc := m.routes()
	rc.VirtualHosts[0].Routes = append([]*route.Route{r}, rc.VirtualHosts[0].Routes...)
	apply(t, m.client, routeType, rc)

	code, body, h := get(t, m.proxyClient(), fmt.Sprintf("http://reviews:%d/headers", m.port),
		"x-set", "client", "x-add", "client", "x-gone", "client")
	if code != 200 || !strings.Contains(body, "x-set=[mesh] x-add=[client mesh] x-gone=[]") {
		t.Errorf("request edits: got %d %q", code, body)
	}
	if h.Get("x-resp") != "yes" || h.Get("x-app") != "" {
		t.Errorf("response edits: x-resp %q (want yes), x-app %q (want removed)", h.Get("x-resp"), h.Get("x-app"))
	}
}

func TestHeaderEditsRefused(t *testing.T) {
	r := prefixRoute("r", "/", "c")
	r.RequestHeadersToAdd = []*core.HeaderValueOption{{Header: &core.HeaderValue{Key: "x-id", Value: "%DOWNSTREAM_REMOTE_ADDRESS%"}}}
	if _, err := compileRoute(r); err == nil || !strings.Contains(err.Error(), "command operators") {
		t.Fatalf("got %v, want command operators refused", err)
	}
}

// TestDirectResponse: a route answers by itself, as Istio's directResponse does.
func TestDirectResponse(t *testing.T) {
	m := newMesh(t)
	r := prefixRoute("direct", "/direct", "")
	r.Action = &route.Route_DirectResponse{DirectResponse: &route.DirectResponseAction{Status: 418,
		Body: &core.DataSource{Specifier: &core.DataSource_InlineString{InlineString: "short and stout"}}}}
	rc := m.routes()
	rc.VirtualHosts[0].Routes = append([]*route.Route{r}, rc.VirtualHosts[0].Routes...)
	apply(t, m.client, routeType, rc)
	code, body, _ := get(t, m.proxyClient(), fmt.Sprintf("http://reviews:%d/direct", m.port))
	if code != 418 || body != "short and stout" {
		t.Errorf("got %d %q, want 418 %q", code, body, "short and stout")
	}
	bad := prefixRoute("bad", "/", "")
	bad.Action = &route.Route_DirectResponse{DirectResponse: &route.DirectResponseAction{Status: 99}}
	if _, err := compileRoute(bad); err == nil || !strings.Contains(err.Error(), "status 99") {
		t.Errorf("status 99: got %v, want refused", err)
	}
}

func TestRedirect(t *testing.T) {
	cases := []struct {
		name       string
		ra         *route.RedirectAction
		host, path string
		status     int
		location   string
	}{
		{"path, default 301", &route.RedirectAction{PathRewriteSpecifier: &route.RedirectAction_PathRedirect{PathRedirect: "/v2"}},
			"reviews:9080", "/v1?x=1", 301, "http://reviews:9080/v2?x=1"},
		{"authority and code", &route.RedirectAction{HostRedirect: "ratings", ResponseCode: route.RedirectAction_FOUND},
			"reviews:9080", "/p", 302, "http://ratings:9080/p"},
		{"scheme and port", &route.RedirectAction{SchemeRewriteSpecifier: &route.RedirectAction_SchemeRedirect{SchemeRedirect: "https"}, PortRedirect: 443},
			"reviews:9080", "/p", 301, "https://reviews/p"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := prefixRoute("r", "/", "")
			r.Action = &route.Route_Redirect{Redirect: tc.ra}
			rr, err := compileRoute(r)
			if err != nil {
				t.Fatal(err)
			}
			if got := rr.redirect.location("http", tc.host, tc.path); got != tc.location || rr.redirect.status != tc.status {
				t.Errorf("got %d %s, want %d %s", rr.redirect.status, got, tc.status, tc.location)
			}
		})
	}
	// Through a sidecar: the client sees the redirect itself.
	m := newMesh(t)
	r := prefixRoute("moved", "/moved", "")
	r.Action = &route.Route_Redirect{Redirect: &route.RedirectAction{PathRewriteSpecifier: &route.RedirectAction_PathRedirect{PathRedirect: "/api/new"}}}
	rc := m.routes()
	rc.VirtualHosts[0].Routes = append([]*route.Route{r}, rc.VirtualHosts[0].Routes...)
	apply(t, m.client, routeType, rc)
	c := m.proxyClient()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	code, _, h := get(t, c, fmt.Sprintf("http://reviews:%d/moved", m.port))
	if want := fmt.Sprintf("http://reviews:%d/api/new", m.port); code != 301 || h.Get("Location") != want {
		t.Errorf("got %d Location %q, want 301 %q", code, h.Get("Location"), want)
	}
}

// TestRewrite: prefix, regex and authority rewrites reach the app.
func TestRewrite(t *testing.T) {
	m := newMesh(t)
	svc := fmt.Sprintf("outbound|%d||reviews.default.svc.cluster.local", m.port)
	prefix := prefixRoute("prefix", "/old-api/", svc)
	prefix.GetRoute().PrefixRewrite = "/api/"
	prefix.GetRoute().HostRewriteSpecifier = &route.RouteAction_HostRewriteLiteral{HostRewriteLiteral: "reviews.internal"}
	regex := prefixRoute("regex", "/r/", svc)
	regex.GetRoute().RegexRewrite = &matcher.RegexMatchAndSubstitute{Pattern: &matcher.RegexMatcher{Regex: "^/r/([0-9]+)$"}, Substitution: "/api/\\1"}
	rc := m.routes()
	rc.VirtualHosts[0].Routes = append([]*route.Route{prefix, regex}, rc.VirtualHosts[0].Routes...)
	apply(t, m.client, routeType, rc)
	c := m.proxyClient()
	base := fmt.Sprintf("http://reviews:%d", m.port)
	cases := []struct{ path, want string }{
		{"/old-api/x?q=1", "v1 reviews.internal /api/x?q=1"},
		{"/r/42", fmt.Sprintf("v1 reviews:%d /api/42", m.port)},
	}
	for _, tc := range cases {
		if code, body, _ := get(t, c, base+tc.path); code != 200 || body != tc.want {
			t.Errorf("%s: got %d %q, want %q", tc.path, code, body, tc.want)
		}
	}
}

// TestDestinationHeaders: a weighted destination's own header edits apply
// to requests sent to it and to its answers, on both request paths; a
// :scheme matcher sees "http".
func TestDestinationHeaders(t *testing.T) {
	m := newMesh(t)
	svc := fmt.Sprintf("outbound|%d||reviews.default.svc.cluster.local", m.port)
	r := prefixRoute("dest", "/headers", "")
	r.Match.Headers = []*route.HeaderMatcher{{Name: ":scheme", HeaderMatchSpecifier: &route.HeaderMatcher_StringMatch{
		StringMatch: &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Exact{Exact: "http"}}}}}
	r.Action = &route.Route_Route{Route: &route.RouteAction{ClusterSpecifier: &route.RouteAction_WeightedClusters{
		WeightedClusters: &route.WeightedCluster{Clusters: []*route.WeightedCluster_ClusterWeight{{Name: svc, Weight: wrapperspb.UInt32(100),
			RequestHeadersToAdd:  []*core.HeaderValueOption{{Header: &core.HeaderValue{Key: "x-set", Value: "dest"}}},
			ResponseHeadersToAdd: []*core.HeaderValueOption{{Header: &core.HeaderValue{Key: "x-resp", Value: "dest"}}}}}}}}}
	p := fmt.Sprint(m.port)
	apply(t, m.client, routeType, &route.RouteConfiguration{Name: p, VirtualHosts: []*route.VirtualHost{
		{Name: "reviews", Domains: []string{"reviews:" + p}, Routes: []*route.Route{r}}}})
	code, body, h := get(t, m.proxyClient(), fmt.Sprintf("http://reviews:%d/headers", m.port))
	if code != 200 || !strings.Contains(body, "x-set=[dest]") || h.Get("x-resp") != "dest" {
		t.Fatalf("HTTP/1.1: %d %q x-resp=%q", code, body, h.Get("x-resp"))
	}
}
