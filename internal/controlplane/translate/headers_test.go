package translate

import (
	"testing"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/weft-mesh/weft/internal/config"
	"github.com/weft-mesh/weft/internal/controlplane/registry"
)

const headersVS = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - headers:
      request:
        set: {x-set: one}
        add: {x-add: two}
        remove: [x-gone]
      response:
        set: {x-resp: "yes"}
    timeout: 2s
    route:
    - destination: {host: reviews}
`

func TestRouteHeadersAndTimeout(t *testing.T) {
	r := reviewsRoutes(t, headersVS, "productpage")[0]
	want := []struct {
		key, value string
		action     core.HeaderValueOption_HeaderAppendAction
	}{{"x-set", "one", core.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD}, {"x-add", "two", core.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD}}
	got := r.GetRequestHeadersToAdd()
	if len(got) != len(want) {
		t.Fatalf("request headers: %v", got)
	}
	for i, w := range want {
		if got[i].GetHeader().GetKey() != w.key || got[i].GetHeader().GetValue() != w.value || got[i].GetAppendAction() != w.action {
			t.Errorf("request header %d: got %v, want %+v", i, got[i], w)
		}
	}
	if rm := r.GetRequestHeadersToRemove(); len(rm) != 1 || rm[0] != "x-gone" {
		t.Errorf("request headers to remove: %v", rm)
	}
	if rs := r.GetResponseHeadersToAdd(); len(rs) != 1 || rs[0].GetHeader().GetKey() != "x-resp" {
		t.Errorf("response headers: %v", rs)
	}
	if d := r.GetRoute().GetTimeout().AsDuration().String(); d != "2s" {
		t.Errorf("timeout %s, want 2s", d)
	}
}

const directVS = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - match: [{uri: {exact: /old}}]
    redirect: {uri: /new, authority: ratings, redirectCode: 302}
  - match: [{uri: {prefix: /v1/}}]
    rewrite: {uri: /api/, authority: reviews.internal}
    route:
    - destination: {host: reviews}
  - match: [{uri: {exact: /teapot}}]
    directResponse:
      status: 418
      body: {string: short and stout}
  - route:
    - destination: {host: reviews}
`

func TestRedirectAndDirectResponse(t *testing.T) {
	routes := reviewsRoutes(t, directVS, "productpage")
	rd := routes[0].GetRedirect()
	if rd.GetPathRedirect() != "/new" || rd.GetHostRedirect() != "ratings" || rd.GetResponseCode() != route.RedirectAction_FOUND {
		t.Fatalf("first route: %v, want a 302 redirect to ratings/new", routes[0])
	}
	rw := routes[1].GetRoute()
	if rw.GetPrefixRewrite() != "/api/" || rw.GetHostRewriteLiteral() != "reviews.internal" {
		t.Fatalf("second route: %v, want prefix and authority rewrites", routes[1])
	}
	dr := routes[2].GetDirectResponse()
	if dr.GetStatus() != 418 || dr.GetBody().GetInlineString() != "short and stout" {
		t.Fatalf("third route: %v, want a 418 direct response", routes[2])
	}
	if routes[3].GetRoute() == nil {
		t.Fatalf("fourth route should forward: %v", routes[3])
	}
}

const sourceVS = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - name: from-productpage
    match: [{sourceLabels: {app: productpage}, withoutHeaders: {x-skip: {exact: "1"}}}]
    route:
    - destination: {host: reviews}
  - name: rest
    route:
    - destination: {host: reviews}
`

func TestSourceLabelsAndWithoutHeaders(t *testing.T) {
	routesFor := func(app string) []*route.Route { return reviewsRoutes(t, sourceVS, app) }
	pp := routesFor("productpage")
	if len(pp) != 2 || pp[0].GetName() != "from-productpage" {
		t.Fatalf("productpage: want from-productpage then rest, got %v", pp)
	}
	if h := pp[0].GetMatch().GetHeaders(); len(h) != 1 || h[0].GetName() != "x-skip" || !h[0].GetInvertMatch() {
		t.Errorf("withoutHeaders: want an inverted x-skip matcher, got %v", h)
	}
	if other := routesFor("ratings"); len(other) != 1 || other[0].GetName() != "rest" {
		t.Errorf("ratings: sourceLabels app=productpage must not apply, got %v", other)
	}
}

// reviewsRoutes builds Bookinfo plus the given VirtualService YAML for a
// sidecar of app and returns its routes for reviews:9080.
func reviewsRoutes(t *testing.T, vsYAML, app string) []*route.Route {
	t.Helper()
	objs := load(t, "testdata/bookinfo-registry.yaml")
	vs, err := config.Parse("vs.yaml", []byte(vsYAML))
	if err != nil {
		t.Fatal(err)
	}
	objs = append(objs, vs...)
	out, err := Build(Input{Config: objs, Registry: registry.Build(objs), Proxy: Proxy{Type: ProxySidecar, Name: app + "-v1-1",
		Namespace: "default", IP: "127.0.9.9", Labels: map[string]string{"app": app}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, res := range out.Routes {
		for _, vh := range res.(*route.RouteConfiguration).GetVirtualHosts() {
			if vh.GetName() == "reviews.default.svc.cluster.local:9080" {
				return vh.GetRoutes()
			}
		}
	}
	t.Fatal("no reviews virtual host")
	return nil
}
