package dataplane

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/proto"
)

// gateway is a router-mode data plane with one HTTP listener in front of an app.
func gateway(t *testing.T, app http.Handler) (*Dataplane, netip.AddrPort) {
	ip := randIP()
	appAddr := startApp(t, randIP(), app)
	d := newTestDataplane(t, ModeRouter, ip)
	apply(t, d, clusterType, append(specialClusters(), staticCluster(t, "app", appAddr, false))...)
	apply(t, d, listenerType, httpListener(t, 8080, "http.8080", true))
	apply(t, d, routeType, &route.RouteConfiguration{Name: "http.8080", VirtualHosts: []*route.VirtualHost{
		{Name: "app", Domains: []string{"*"}, Routes: []*route.Route{prefixRoute("app", "/", "app")}}}})
	return d, netip.AddrPortFrom(ip, 8080)
}

func TestListenerRemovalDrainsInFlight(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	d, addr := gateway(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(started)
			<-release
		}
		io.WriteString(w, "done "+r.URL.Path)
	}))
	base := "http://" + addr.String()
	if code, body, _ := get(t, http.DefaultClient, base+"/fast"); code != 200 || body != "done /fast" {
		t.Fatalf("before: %d %q", code, body)
	}
	type result struct {
		code int
		body string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := http.Get(base + "/slow")
		if err != nil {
			done <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		done <- result{resp.StatusCode, string(b), err}
	}()
	<-started
	apply(t, d, listenerType) // the listener is gone
	waitFor(t, "the listener to stop accepting", func() bool {
		c, err := net.DialTimeout("tcp", addr.String(), time.Second)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	close(release)
	r := <-done
	if r.err != nil || r.code != 200 || r.body != "done /slow" {
		t.Fatalf("in-flight request across the removal: %d %q %v", r.code, r.body, r.err)
	}
}

func TestShutdownWaitsForInFlight(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	d, addr := gateway(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
		io.WriteString(w, "finished")
	}))
	done := make(chan string, 1)
	go func() {
		_, body, _ := get(t, http.DefaultClient, "http://"+addr.String()+"/")
		done <- body
	}()
	<-started
	shut := make(chan error, 1)
	go func() { shut <- d.Shutdown(context.Background()) }()
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v before the in-flight request finished", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if body := <-done; body != "finished" {
		t.Fatalf("in-flight request: %q", body)
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if d.Ready() {
		t.Fatal("Ready after Shutdown")
	}
}

func TestEndpointUpdateKeepsRoundRobinPosition(t *testing.T) {
	st := &state{}
	a, b, c := netip.MustParseAddrPort("127.0.0.1:1"), netip.MustParseAddrPort("127.0.0.1:2"), netip.MustParseAddrPort("127.0.0.1:3")
	cfg := &config{clusters: mustTyped[*cluster.Cluster](t, edsCluster(t, "c", false)),
		endpoints: mustTyped[*endpoint.ClusterLoadAssignment](t, cla("c", false, a, b))}
	pick := func(cfg *config) string {
		rt, err := compile(cfg, st)
		if err != nil {
			t.Fatal(err)
		}
		cl := rt.clusters["c"]
		return cl.lb.pick(cl.endpoints).addr
	}
	first := pick(cfg)
	second := pick(cfg) // a new build of the same endpoints continues the rotation
	if first == second {
		t.Fatalf("round robin restarted across builds: %s then %s", first, second)
	}
	cfg.endpoints = mustTyped[*endpoint.ClusterLoadAssignment](t, cla("c", false, a, b, c))
	seen := map[string]bool{}
	for range 3 {
		seen[pick(cfg)] = true
	}
	if len(seen) != 3 {
		t.Fatalf("after adding an endpoint, 3 picks gave %v", seen)
	}
}

func mustTyped[T proto.Message](t *testing.T, res ...proto.Message) map[string]T {
	t.Helper()
	m, err := typed[T](named(res...))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestReadyWaitsForEveryType(t *testing.T) {
	ip := randIP()
	d := newTestDataplane(t, ModeSidecar, ip)
	steps := []struct {
		typeURL string
		res     []proto.Message
		ready   bool
	}{
		{clusterType, append(specialClusters(), edsCluster(t, "outbound|80||a", false)), false},
		{listenerType, []proto.Message{outboundListener(t, ip), httpListener(t, 80, "80", false)}, false},
		{endpointType, []proto.Message{cla("outbound|80||a", false)}, false},
		{routeType, []proto.Message{&route.RouteConfiguration{Name: "80"}}, true},
	}
	for _, s := range steps {
		apply(t, d, s.typeURL, s.res...)
		if d.Ready() != s.ready {
			t.Fatalf("after %s: Ready() = %v, want %v", s.typeURL, !s.ready, s.ready)
		}
	}
}
