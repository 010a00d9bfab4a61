package dataplane

import (
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
)

func TestShadowHost(t *testing.T) {
	for in, want := range map[string]string{"reviews:9080": "reviews-shadow:9080", "reviews": "reviews-shadow", "[::1]:80": "[::1-shadow]:80"} {
		if got := shadowHost(in); got != want {
			t.Errorf("shadowHost(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestMirror checks Istio's mirroring task: v1 answers, v2 gets a copy
// with Host -shadow and the body; a 50% mirror copies about half.
func TestMirror(t *testing.T) {
	type seen struct{ host, method, body string }
	var mu sync.Mutex
	var shadows []seen
	ip := randIP()
	v1 := startApp(t, ip, appHandler("v1"))
	v2 := startApp(t, randIP(), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		shadows = append(shadows, seen{r.Host, r.Method, string(b)})
		mu.Unlock()
		fmt.Fprint(w, "v2 must never be seen")
	}))
	client := newTestDataplane(t, ModeSidecar, ip)
	port := v1.Port()
	c1 := fmt.Sprintf("outbound|%d|v1|svc.default.svc.cluster.local", port)
	c2 := fmt.Sprintf("outbound|%d|v2|svc.default.svc.cluster.local", port)
	apply(t, client, clusterType, append(specialClusters(), edsCluster(t, c1, false), edsCluster(t, c2, false))...)
	apply(t, client, endpointType, cla(c1, false, v1), cla(c2, false, v2))
	apply(t, client, listenerType, outboundListener(t, ip), httpListener(t, port, fmt.Sprint(port), false))
	mirrored := func(name, prefix string, share uint32) *route.Route {
		r := prefixRoute(name, prefix, c1)
		r.GetRoute().RequestMirrorPolicies = []*route.RouteAction_RequestMirrorPolicy{{Cluster: c2,
			RuntimeFraction: &core.RuntimeFractionalPercent{DefaultValue: &typev3.FractionalPercent{Numerator: share, Denominator: typev3.FractionalPercent_HUNDRED}}}}
		return r
	}
	authority := fmt.Sprintf("svc:%d", port)
	apply(t, client, routeType, &route.RouteConfiguration{Name: fmt.Sprint(port), VirtualHosts: []*route.VirtualHost{{
		Name: "svc", Domains: []string{authority}, Routes: []*route.Route{mirrored("half", "/half", 50), mirrored("all", "/", 100)}}}})
	c := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(mustURL("http://" + netip.AddrPortFrom(ip, testOutbound).String()))}}

	resp, err := c.Post("http://"+authority+"/all", "text/plain", strings.NewReader("hello"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.HasPrefix(string(b), "v1 ") {
		t.Fatalf("the caller must get v1's answer, got %q", b)
	}
	waitFor(t, "the shadow copy", func() bool { mu.Lock(); defer mu.Unlock(); return len(shadows) == 1 })
	if want := (seen{fmt.Sprintf("svc-shadow:%d", port), "POST", "hello"}); shadows[0] != want {
		t.Fatalf("shadow got %+v, want %+v", shadows[0], want)
	}

	const n = 200
	for range n {
		resp, err := c.Get("http://" + authority + "/half")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	// 50% of 200: mean 100, sd about 7; 60..140 is beyond 5 sd either way.
	waitFor(t, "shadows to settle", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(shadows)-1 >= 60
	})
	mu.Lock()
	got := len(shadows) - 1
	mu.Unlock()
	if got < 60 || got > 140 {
		t.Fatalf("a 50%% mirror copied %d of %d requests", got, n)
	}
}
