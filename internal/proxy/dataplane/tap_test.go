package dataplane

import (
	"testing"
	"time"

	"github.com/weft-mesh/weft/internal/proxy/accesslog"
	"github.com/weft-mesh/weft/internal/proxy/stats"
	"github.com/weft-mesh/weft/internal/tap"
)

// tapTelemetry is a sidecar's telemetry (metrics and access log on) of
// reviews-v2, with hub as its tap (nil: none).
func tapTelemetry(hub *tap.Hub) *telemetry {
	self := stats.Workload{Name: "reviews-v2", Namespace: "default", App: "reviews", Version: "v2"}
	return newTelemetry(Telemetry{Stats: stats.New(0), AccessLog: accesslog.New(accesslog.Options{}), Self: self,
		Service: "reviews.default.svc.cluster.local", Tap: hub})
}

// inboundObservation is productpage's GET /reviews/0 as reviews' sidecar saw it.
func inboundObservation(t *telemetry) *observation {
	return &observation{inbound: true, method: "GET", path: "/reviews/0", authority: "reviews:9080", protocol: "HTTP/1.1",
		requestID: "req-1", remote: "127.0.1.2:40000", route: "default", cluster: "inbound|9080||", upstream: "127.0.1.5:9080",
		edge: t.inboundEdge("productpage-v1;default;productpage;v1;", origin{})}
}

func TestTapPublishesMatchingExchanges(t *testing.T) {
	hub := &tap.Hub{}
	tel := tapTelemetry(hub)
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name   string
		filter tap.Filter
		want   bool
	}{
		{"no filter", tap.Filter{}, true},
		{"path prefix", tap.Filter{PathPrefix: "/reviews"}, true},
		{"other path", tap.Filter{PathPrefix: "/ratings"}, false},
		{"method", tap.Filter{Method: "get"}, true},
		{"other method", tap.Filter{Method: "POST"}, false},
		{"authority without port", tap.Filter{Authority: "reviews"}, true},
		{"other authority", tap.Filter{Authority: "ratings:9080"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			events, _, stop := hub.Subscribe(tt.filter)
			defer stop()
			tel.record(inboundObservation(tel), start, 200, "", "", 3*time.Millisecond, -1, 0, 120)
			select {
			case e := <-events:
				if !tt.want {
					t.Fatalf("filter %+v let through %+v", tt.filter, e)
				}
				want := tap.Event{Time: start, Direction: tap.Inbound, Source: "productpage-v1", Destination: "reviews-v2", Method: "GET",
					Authority: "reviews:9080", Path: "/reviews/0", Status: 200, LatencyMillis: 3, Route: "default",
					UpstreamHost: "127.0.1.5:9080", UpstreamCluster: "inbound|9080||", RequestID: "req-1"}
				if e != want {
					t.Fatalf("event\n got %+v\nwant %+v", e, want)
				}
			default:
				if tt.want {
					t.Fatalf("filter %+v: no event", tt.filter)
				}
			}
		})
	}
	if hub.Active() {
		t.Fatal("the hub is active after every tap stopped")
	}
}

// TestNoTapAllocatesNothing: a proxy with no tap attached records an
// exchange with exactly the allocations of a proxy without tap at all.
func TestNoTapAllocatesNothing(t *testing.T) {
	count := func(hub *tap.Hub) float64 {
		tel := tapTelemetry(hub)
		o := inboundObservation(tel)
		start := time.Now()
		return testing.AllocsPerRun(1000, func() {
			tel.record(o, start, 200, "", "", time.Millisecond, -1, 0, 120)
		})
	}
	without, idle := count(nil), count(&tap.Hub{})
	if idle != without {
		t.Fatalf("recording an exchange allocates %v times with an idle tap hub, %v without tap", idle, without)
	}
	hub := &tap.Hub{}
	_, _, stop := hub.Subscribe(tap.Filter{PathPrefix: "/nothing"})
	attached := count(hub)
	stop()
	t.Logf("allocations per exchange: no tap %v, idle tap %v, tap attached (filtered out) %v", without, idle, attached)
}

// BenchmarkRecordTap records one exchange (metrics and access log on)
// with no tap, an idle hub, and a tap attached that filters it out or
// takes it. Read its allocs/op: the no-tap path must not grow.
func BenchmarkRecordTap(b *testing.B) {
	cases := []struct {
		name   string
		hub    *tap.Hub
		filter *tap.Filter
	}{
		{"no_tap", nil, nil},
		{"idle_hub", &tap.Hub{}, nil},
		{"attached_filtered_out", &tap.Hub{}, &tap.Filter{PathPrefix: "/nothing"}},
		{"attached_matching", &tap.Hub{}, &tap.Filter{}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			tel := tapTelemetry(c.hub)
			if c.filter != nil {
				events, _, stop := c.hub.Subscribe(*c.filter)
				defer stop()
				done := make(chan struct{})
				defer close(done)
				go func() {
					for {
						select {
						case <-events:
						case <-done:
							return
						}
					}
				}()
			}
			o := inboundObservation(tel)
			start := time.Now()
			b.ReportAllocs()
			for b.Loop() {
				tel.record(o, start, 200, "", "", time.Millisecond, -1, 0, 120)
			}
		})
	}
}
