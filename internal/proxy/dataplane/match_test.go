package dataplane

import (
	"bufio"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"

	"github.com/weft-mesh/weft/internal/proxy/http1"
)

// manyRoutes is one virtual host with n routes: each matches a path
// prefix and a header; only the last one matches the benchmark request.
func manyRoutes(tb testing.TB, n int) *rtable {
	vh := &route.VirtualHost{Name: "svc", Domains: []string{"svc:9080"}}
	for i := range n - 1 {
		r := prefixRoute(fmt.Sprint("r", i), fmt.Sprintf("/api/v%d/", i), "c")
		r.Match.Headers = []*route.HeaderMatcher{{Name: "end-user", HeaderMatchSpecifier: &route.HeaderMatcher_StringMatch{
			StringMatch: &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Exact{Exact: fmt.Sprint("user", i)}}}}}
		vh.Routes = append(vh.Routes, r)
	}
	vh.Routes = append(vh.Routes, prefixRoute("last", "/", "c"))
	t, err := compileRoutes(&route.RouteConfiguration{Name: "9080", VirtualHosts: []*route.VirtualHost{vh}})
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

// h1Req parses a request head as the HTTP/1.1 engine does.
func h1Req(tb testing.TB, raw string) *http1.Request {
	var req http1.Request
	if err := http1.ReadRequest(bufioReader(raw), &req, 0); err != nil {
		tb.Fatal(err)
	}
	return &req
}

// BenchmarkRouteMatchScaling matches the last of 10, 100 and 1,000 routes:
// the cost grows linearly with the routes tried, and nothing is allocated.
func BenchmarkRouteMatchScaling(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		t := manyRoutes(b, n)
		req := h1Req(b, "GET /api/v1/x HTTP/1.1\r\nHost: svc:9080\r\nEnd-User: nobody\r\n\r\n")
		b.Run(fmt.Sprint(n, "_routes"), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if r := t.vhost(req.Authority()).route((*h1Request)(req)); r == nil || r.name != "last" {
					b.Fatal("wrong route")
				}
			}
		})
	}
}

// TestRouteMatchAllocatesNothing: the common path (HTTP/1.1 request, host,
// prefix and header matches) allocates nothing, however many routes.
func TestRouteMatchAllocatesNothing(t *testing.T) {
	tab := manyRoutes(t, 1000)
	req := h1Req(t, "GET /api/v1/x HTTP/1.1\r\nHost: svc:9080\r\nEnd-User: nobody\r\n\r\n")
	if n := testing.AllocsPerRun(100, func() { tab.vhost(req.Authority()).route((*h1Request)(req)) }); n != 0 {
		t.Fatalf("route matching allocates %v times per request", n)
	}
	jason := h1Req(t, "GET /api/v7/x HTTP/1.1\r\nHost: svc:9080\r\nEnd-User: user7\r\n\r\n")
	if r := tab.vhost(jason.Authority()).route((*h1Request)(jason)); r == nil || r.name != "r7" {
		t.Fatalf("user7 on /api/v7/ must match r7, got %v", r)
	}
}

// FuzzRouteMatch feeds arbitrary hosts, targets and headers to a table
// with exact, prefix, regex, header and query matches on both request
// adapters: no panic, and both adapters agree.
func FuzzRouteMatch(f *testing.F) {
	f.Add("reviews:9080", "/reviews/1?x=1", "jason")
	f.Add("", "", "")
	f.Add("*.x", "//..%2f?&&==", "\x00\xff")
	tab := fuzzTable(f)
	f.Fuzz(func(t *testing.T, host, target, user string) {
		if !validHead(host) || !validHead(target) || !validHead(user) {
			return
		}
		if !strings.HasPrefix(target, "/") {
			target = "/" + target
		}
		raw := "GET " + target + " HTTP/1.1\r\nHost: " + host + "\r\nEnd-User: " + user + "\r\n\r\n"
		var req http1.Request
		if err := http1.ReadRequest(bufioReader(raw), &req, 0); err != nil {
			return
		}
		r1 := tab.vhost(req.Authority()).route((*h1Request)(&req))
		u, err := url.ParseRequestURI(req.Path())
		if err != nil {
			return
		}
		sr := &http.Request{Method: "GET", URL: u, Host: req.Authority(), Header: http.Header{"End-User": {req.Header.Get("end-user")}}}
		if p, _, _ := strings.Cut(req.Path(), "?"); u.EscapedPath() != p {
			return // the std adapter re-escapes; only compare when it keeps the path as sent
		}
		r2 := tab.vhost(sr.Host).route((*stdRequest)(sr))
		if (r1 == nil) != (r2 == nil) || (r1 != nil && r1.name != r2.name) {
			t.Fatalf("adapters disagree on %q %q %q: %v vs %v", host, target, user, r1, r2)
		}
	})
}

func validHead(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c == 0x7f {
			return false
		}
	}
	return true
}

func fuzzTable(tb testing.TB) *rtable {
	exact := &route.Route{Name: "exact", Match: &route.RouteMatch{PathSpecifier: &route.RouteMatch_Path{Path: "/exact"}}, Action: clusterAction("c")}
	regex := &route.Route{Name: "regex", Match: &route.RouteMatch{PathSpecifier: &route.RouteMatch_SafeRegex{SafeRegex: &matcher.RegexMatcher{Regex: "/ratings/[0-9]+"}}}, Action: clusterAction("c")}
	jason := prefixRoute("jason", "/", "c")
	jason.Match.Headers = []*route.HeaderMatcher{{Name: "end-user", HeaderMatchSpecifier: &route.HeaderMatcher_StringMatch{
		StringMatch: &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Prefix{Prefix: "ja"}, IgnoreCase: true}}}}
	query := prefixRoute("query", "/q", "c")
	query.Match.QueryParameters = []*route.QueryParameterMatcher{{Name: "x", QueryParameterMatchSpecifier: &route.QueryParameterMatcher_StringMatch{
		StringMatch: &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Exact{Exact: "1"}}}}}
	rc := &route.RouteConfiguration{Name: "f", VirtualHosts: []*route.VirtualHost{
		{Name: "reviews", Domains: []string{"reviews", "reviews:9080", "*.wild.com", "pre.*"}, Routes: []*route.Route{exact, regex, jason, query, prefixRoute("default", "/api", "c")}},
		{Name: "any", Domains: []string{"*"}, Routes: []*route.Route{prefixRoute("any", "/", "c")}},
	}}
	t, err := compileRoutes(rc)
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

// FuzzHeaderEdits applies a route's header edits to arbitrary header
// lists in both header representations: no panic, and the same result.
func FuzzHeaderEdits(f *testing.F) {
	f.Add("x-a", "1", "X-A", "2")
	f.Add("", "", "\x00", "\n")
	e := &headerEdits{edits: []headerEdit{{name: "x-set", value: "v"}, {name: "x-add", value: "w", append: true}}, remove: []string{"x-gone", "X-A"}}
	f.Fuzz(func(t *testing.T, n1, v1, n2, v2 string) {
		if !validToken(n1) || !validToken(n2) {
			return
		}
		h1 := http1.Header{{Name: n1, Value: v1}, {Name: n2, Value: v2}}
		std := http.Header{}
		std.Add(n1, v1)
		std.Add(n2, v2)
		e.apply(&h1)
		e.apply(std)
		for _, name := range []string{"x-set", "x-add", "x-gone", "x-a", n1, n2} {
			var got []string
			for _, f := range h1 {
				if strings.EqualFold(f.Name, name) {
					got = append(got, f.Value)
				}
			}
			want := std.Values(name)
			if strings.Join(got, "\x00") != strings.Join(want, "\x00") {
				t.Fatalf("header %q: http1 %q, net/http %q", name, got, want)
			}
		}
	})
}

func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func bufioReader(s string) *bufio.Reader { return bufio.NewReader(strings.NewReader(s)) }
