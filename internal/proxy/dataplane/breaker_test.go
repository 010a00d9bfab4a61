package dataplane

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func TestBreakerAdmit(t *testing.T) {
	b := &breaker{}
	b.limits.Store(&breakerLimits{maxConnections: 1, maxPending: 1, maxRequests: 100, maxRetries: 1})
	ctx := context.Background()
	if !b.admit(ctx, true) {
		t.Fatal("the first request must get the connection")
	}
	second := make(chan bool)
	go func() { second <- b.admit(ctx, true) }()
	waitFor(t, "the second request to wait", func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return len(b.waiting) == 1
	})
	if b.admit(ctx, true) {
		t.Fatal("a third request must overflow: one in use, one pending")
	}
	b.release(true)
	if !<-second {
		t.Fatal("the pending request must get the freed connection")
	}
	b.release(true)
	if b.active.Load() != 0 || b.inUse != 0 || b.overflows.Load() != 1 {
		t.Fatalf("active %d inUse %d overflows %d", b.active.Load(), b.inUse, b.overflows.Load())
	}
	// Waiting ends with the caller's context.
	if !b.admit(ctx, true) {
		t.Fatal("admit")
	}
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if b.admit(cctx, true) {
		t.Fatal("a waiter whose context ends must not be admitted")
	}
	b.release(true)
	if b.active.Load() != 0 {
		t.Fatalf("active %d after all released", b.active.Load())
	}
	if !b.retry() || b.retry() {
		t.Fatal("max_retries 1: one retry in flight at most")
	}
	b.retryDone()
	// HTTP/2 upstreams count requests only.
	b.limits.Store(&breakerLimits{maxConnections: 1, maxPending: 0, maxRequests: 2, maxRetries: 1})
	if !b.admit(ctx, false) || !b.admit(ctx, false) || b.admit(ctx, false) {
		t.Fatal("max_requests 2 on an h2 upstream")
	}
}

// TestCircuitBreakerAndOutlierDetection drives Istio's circuit breaking and
// outlier detection tasks through a sidecar: concurrent requests beyond
// maxConnections + pending get 503 UO; a host answering 500s is ejected
// and traffic moves to the healthy one.
func TestCircuitBreakerAndOutlierDetection(t *testing.T) {
	ip := randIP()
	slow := startApp(t, ip, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(300 * time.Millisecond)
		fmt.Fprint(w, "slow")
	}))
	good := startApp(t, randIP(), appHandler("good"))
	bad := startApp(t, randIP(), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprint(w, "bad")
	}))
	client := newTestDataplane(t, ModeSidecar, ip)
	port := slow.Port()
	cb := fmt.Sprintf("outbound|%d|cb|svc.default.svc.cluster.local", port)
	od := fmt.Sprintf("outbound|%d|od|svc.default.svc.cluster.local", port)
	cbCluster := edsCluster(t, cb, false)
	cbCluster.CircuitBreakers = &cluster.CircuitBreakers{Thresholds: []*cluster.CircuitBreakers_Thresholds{{
		MaxConnections: wrapperspb.UInt32(1), MaxPendingRequests: wrapperspb.UInt32(1)}}}
	odCluster := edsCluster(t, od, false)
	odCluster.OutlierDetection = &cluster.OutlierDetection{Consecutive_5Xx: wrapperspb.UInt32(2), EnforcingConsecutive_5Xx: wrapperspb.UInt32(100),
		EnforcingSuccessRate: wrapperspb.UInt32(0), BaseEjectionTime: durationpb.New(time.Minute), MaxEjectionPercent: wrapperspb.UInt32(50)}
	odCluster.CommonLbConfig = &cluster.Cluster_CommonLbConfig{HealthyPanicThreshold: &typev3.Percent{Value: 0}}
	apply(t, client, clusterType, append(specialClusters(), cbCluster, odCluster)...)
	apply(t, client, endpointType, cla(cb, false, slow), cla(od, false, good, bad))
	apply(t, client, listenerType, outboundListener(t, ip), httpListener(t, port, fmt.Sprint(port), false))
	authority := fmt.Sprintf("svc:%d", port)
	apply(t, client, routeType, &route.RouteConfiguration{Name: fmt.Sprint(port), VirtualHosts: []*route.VirtualHost{{
		Name: "svc", Domains: []string{authority},
		Routes: []*route.Route{prefixRoute("od", "/od", od), prefixRoute("cb", "/", cb)}}}})
	c := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(mustURL("http://" + netip.AddrPortFrom(ip, testOutbound).String())),
		MaxConnsPerHost: 0, MaxIdleConnsPerHost: 10}}

	t.Run("circuit breaker", func(t *testing.T) {
		var mu sync.Mutex
		codes := map[string]int{}
		var wg sync.WaitGroup
		for range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := c.Get("http://" + authority + "/")
				if err != nil {
					t.Error(err)
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				mu.Lock()
				codes[fmt.Sprintf("%d %s %s", resp.StatusCode, resp.Header.Get("x-weft-response-flags"), strings.TrimSpace(string(b)))]++
				mu.Unlock()
			}()
		}
		wg.Wait()
		ok, overflow := codes["200  slow"], codes["503 UO "+overflowBody]
		if ok < 2 || overflow < 1 || ok+overflow != 6 {
			t.Fatalf("6 concurrent requests with maxConnections 1 and 1 pending: %v", codes)
		}
	})

	t.Run("outlier detection", func(t *testing.T) {
		bads := 0
		for i := range 40 {
			resp, err := c.Get("http://" + authority + "/od")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode == 500 {
				bads++
				if i >= 10 {
					t.Fatalf("request %d still reached the failing host", i)
				}
			}
		}
		if bads < 1 || bads > 2 {
			t.Fatalf("the failing host answered %d times, want it ejected after 2 consecutive 5xx", bads)
		}
		var st ClusterStatus
		for _, cs := range client.Clusters() {
			if cs.Name == od {
				st = cs
			}
		}
		healthy := 0
		for _, e := range st.Endpoints {
			if e.Healthy {
				healthy++
			}
		}
		if healthy != 1 {
			t.Fatalf("admin clusters show %d healthy endpoints, want 1: %+v", healthy, st)
		}
	})
}
