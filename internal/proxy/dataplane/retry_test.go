package dataplane

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"golang.org/x/net/http2"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/weft-mesh/weft/internal/proxy/http1"
)

// deadAddr is a loopback address nobody listens on.
func deadAddr(t *testing.T, ip netip.Addr) netip.AddrPort {
	ln, err := net.Listen("tcp", netip.AddrPortFrom(ip, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	ap := netip.MustParseAddrPort(ln.Addr().String())
	ln.Close()
	return ap
}

func retryRoute(name, prefix, cluster string, p *route.RetryPolicy) *route.Route {
	r := prefixRoute(name, prefix, cluster)
	r.GetRoute().RetryPolicy = p
	return r
}

// TestRetries checks Envoy's retry semantics on both HTTP/1.1 and h2c
// downstreams: connect failures move to another host, retriable statuses
// are retried with the body replayed, the limit gives URX, and each
// attempt carries x-envoy-attempt-count.
func TestRetries(t *testing.T) {
	var always503 atomic.Int64
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		attempt := r.Header.Get("X-Envoy-Attempt-Count")
		switch {
		case strings.HasPrefix(r.URL.Path, "/flaky") && attempt == "1":
			w.WriteHeader(http.StatusServiceUnavailable)
		case strings.HasPrefix(r.URL.Path, "/always"):
			always503.Add(1)
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		fmt.Fprintf(w, "attempt=%s body=%q", attempt, body)
	})
	ip := randIP()
	live := startApp(t, ip, app)
	dead := deadAddr(t, randIP())
	client := newTestDataplane(t, ModeSidecar, ip)
	port := live.Port()
	svc := fmt.Sprintf("outbound|%d||svc.default.svc.cluster.local", port)
	both := fmt.Sprintf("outbound|%d|both|svc.default.svc.cluster.local", port)
	apply(t, client, clusterType, append(specialClusters(), edsCluster(t, svc, false), edsCluster(t, both, false))...)
	apply(t, client, endpointType, cla(svc, false, live), cla(both, false, dead, live))
	apply(t, client, listenerType, outboundListener(t, ip), httpListener(t, port, fmt.Sprint(port), false))
	connectFailure := &route.RetryPolicy{RetryOn: "connect-failure", NumRetries: wrapperspb.UInt32(2), HostSelectionRetryMaxAttempts: 5,
		RetryHostPredicate: []*route.RetryPolicy_RetryHostPredicate{{Name: "envoy.retry_host_predicates.previous_hosts"}}}
	on503 := &route.RetryPolicy{RetryOn: "retriable-status-codes", RetriableStatusCodes: []uint32{503}, NumRetries: wrapperspb.UInt32(2),
		PerTryTimeout: durationpb.New(2 * time.Second)}
	authority := fmt.Sprintf("svc:%d", port)
	apply(t, client, routeType, &route.RouteConfiguration{Name: fmt.Sprint(port), VirtualHosts: []*route.VirtualHost{{
		Name: "svc", Domains: []string{authority}, IncludeRequestAttemptCount: true,
		Routes: []*route.Route{
			retryRoute("conn", "/conn", both, connectFailure),
			retryRoute("flaky", "/flaky", svc, on503),
			retryRoute("always", "/always", svc, on503),
			prefixRoute("noretry", "/", svc),
		}}}})

	h1c := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(mustURL("http://" + netip.AddrPortFrom(ip, testOutbound).String()))}}
	dial := connectDialer(netip.AddrPortFrom(ip, testOutbound))
	h2c := &http.Client{Transport: &http2.Transport{AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, _, addr string, _ *tls.Config) (net.Conn, error) { return dial(ctx, addr) }}}
	for _, tc := range []struct {
		name string
		c    *http.Client
	}{{"http1", h1c}, {"h2c", h2c}} {
		t.Run(tc.name, func(t *testing.T) {
			do := func(method, path, body string) (int, string, string) {
				t.Helper()
				req, _ := http.NewRequest(method, "http://"+authority+path, strings.NewReader(body))
				if body == "" {
					req.Body = http.NoBody
				}
				resp, err := tc.c.Do(req)
				if err != nil {
					t.Fatalf("%s %s: %v", method, path, err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, string(b), resp.Header.Get("x-weft-response-flags")
			}
			// Half the picks land on the dead endpoint: each must move on.
			for i := range 20 {
				if code, body, _ := do("GET", "/conn", ""); code != 200 {
					t.Fatalf("request %d to a cluster with a dead endpoint: %d %s", i, code, body)
				}
			}
			if code, body, _ := do("POST", "/flaky", "payload"); code != 200 || body != `attempt=2 body="payload"` {
				t.Fatalf("retriable 503: got %d %s", code, body)
			}
			before := always503.Load()
			code, _, flags := do("GET", "/always", "")
			if code != 503 || flags != "URX" || always503.Load()-before != 3 {
				t.Fatalf("exhausted retries: got %d flags %q after %d attempts, want 503 URX after 3", code, flags, always503.Load()-before)
			}
			if code, body, flags := do("GET", "/flaky-noretry-path-is-flaky", ""); code != 200 || !strings.Contains(body, "attempt=2") || flags != "" {
				t.Fatalf("flaky prefix: %d %s %q", code, body, flags)
			}
		})
	}
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

func TestRetriable(t *testing.T) {
	p := &rretry{on: retry5xx | retryConnectFailure | retryUnavailable | retryStatusCodes, codes: []int{409}}
	tests := []struct {
		f    http1.Failure
		want bool
	}{
		{http1.Failure{Connect: true}, true},
		{http1.Failure{Reset: true}, true}, // 5xx covers resets
		{http1.Failure{Status: 500}, true},
		{http1.Failure{Status: 404}, false},
		{http1.Failure{Status: 409}, true},
		{http1.Failure{Status: 200, GRPCStatus: "14"}, true},
		{http1.Failure{Status: 200, GRPCStatus: "13"}, false},
	}
	for _, tt := range tests {
		if got := p.retriable(tt.f); got != tt.want {
			t.Errorf("retriable(%+v) = %v, want %v", tt.f, got, tt.want)
		}
	}
	gw := &rretry{on: retryGatewayError}
	if gw.retriable(http1.Failure{Status: 500}) || !gw.retriable(http1.Failure{Status: 504}) {
		t.Error("gateway-error covers 502, 503 and 504 only")
	}
}
