package tracing

import (
	"context"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// sink collects exported spans by span id.
type sink struct {
	mu      sync.Mutex
	spans   map[string]*tracepb.Span
	service string
}

func newSink() *sink { return &sink{spans: map[string]*tracepb.Span{}} }

func (s *sink) add(req *collectortrace.ExportTraceServiceRequest) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rs := range req.ResourceSpans {
		for _, a := range rs.GetResource().GetAttributes() {
			if a.Key == "service.name" {
				s.service = a.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.ScopeSpans {
			for _, sp := range ss.Spans {
				s.spans[hex.EncodeToString(sp.SpanId)] = sp
			}
		}
	}
}

func (s *sink) get(id string) *tracepb.Span {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.spans[id]
}

// grpcSink is a minimal OTLP/gRPC receiver.
type grpcSink struct {
	collectortrace.UnimplementedTraceServiceServer
	*sink
}

func (g grpcSink) Export(_ context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	g.add(req)
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

func startGRPCSink(t *testing.T) (*sink, string) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := newSink()
	srv := grpc.NewServer()
	collectortrace.RegisterTraceServiceServer(srv, grpcSink{sink: s})
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	return s, lis.Addr().String()
}

func startHTTPSink(t *testing.T) (*sink, string) {
	t.Helper()
	s := newSink()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/traces" || r.Method != http.MethodPost {
			http.NotFound(w, r)
			return
		}
		body, _ := io.ReadAll(r.Body)
		var req collectortrace.ExportTraceServiceRequest
		if err := proto.Unmarshal(body, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.add(&req)
		w.Header().Set("Content-Type", "application/x-protobuf")
		b, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
		w.Write(b)
	}))
	t.Cleanup(srv.Close)
	return s, srv.URL
}

// headerMap is what Inject writes into.
type headerMap map[string]string

func (h headerMap) set(k, v string) { h[k] = v }

func newTracer(t *testing.T, endpoint string, percent float64) *Tracer {
	t.Helper()
	tr, err := New(Options{
		Endpoint: endpoint, ServiceName: "reviews", Namespace: "default", Version: "v2",
		NodeID: "sidecar~127.0.1.7~reviews-v2-1.default~default.svc.cluster.local", SamplePercent: percent,
	})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// TestEndToEnd runs a server span and its client span, as an inbound
// request followed by the app's outbound call, and checks what reaches an
// OTLP receiver over gRPC and over HTTP.
func TestEndToEnd(t *testing.T) {
	for _, tc := range []struct {
		name  string
		start func(t *testing.T) (*sink, string)
	}{
		{"grpc", startGRPCSink},
		{"http", startHTTPSink},
		{"http with path", func(t *testing.T) (*sink, string) {
			s, u := startHTTPSink(t)
			return s, u + "/v1/traces"
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sk, endpoint := tc.start(t)
			tr := newTracer(t, endpoint, 0) // sampling comes from the incoming header
			t0 := time.Unix(1700000000, 0)
			in := mapHeader{"traceparent": "00-" + tid128 + "-" + sid64 + "-01", "tracestate": "vendor=x"}
			server := tr.Start(ServerKind, in, "reviews.default.svc.cluster.local:9080/*", t0)
			if server == nil {
				t.Fatal("sampled traceparent: Start returned nil")
			}
			server.SetAttributes(RequestAttributes("GET", "http://reviews:9080/reviews/0", "HTTP/1.1", "curl", "req-1")...)
			up := headerMap{}
			server.Inject(up.set)
			client := tr.Start(ClientKind, mapHeader(up), "ratings.default.svc.cluster.local:9080/*", t0.Add(time.Millisecond))
			client.SetAttributes(attribute.String(KeyUpstreamCluster, "outbound|9080||ratings.default.svc.cluster.local"))
			cup := headerMap{}
			client.Inject(cup.set)
			client.End(t0.Add(5*time.Millisecond), 503, "UH")
			server.End(t0.Add(10*time.Millisecond), 200, "")
			if err := tr.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}

			if server.TraceID() != tid128 || client.TraceID() != tid128 {
				t.Errorf("trace ids %s, %s; want %s", server.TraceID(), client.TraceID(), tid128)
			}
			wantUp := headerMap{
				"traceparent": "00-" + tid128 + "-" + server.SpanID() + "-01", "tracestate": "vendor=x",
				"x-b3-traceid": tid128, "x-b3-spanid": server.SpanID(), "x-b3-parentspanid": sid64, "x-b3-sampled": "1",
			}
			if !equalMaps(up, wantUp) {
				t.Errorf("server Inject = %v, want %v", up, wantUp)
			}
			if cup["x-b3-parentspanid"] != server.SpanID() || cup["x-b3-spanid"] != client.SpanID() {
				t.Errorf("client Inject = %v", cup)
			}

			ss, cs := sk.get(server.SpanID()), sk.get(client.SpanID())
			if ss == nil || cs == nil {
				t.Fatalf("exported spans missing: server %v client %v", ss != nil, cs != nil)
			}
			if sk.service != "reviews.default" {
				t.Errorf("service.name = %q", sk.service)
			}
			if got := hex.EncodeToString(ss.ParentSpanId); got != sid64 {
				t.Errorf("server parent = %s, want %s", got, sid64)
			}
			if got := hex.EncodeToString(cs.ParentSpanId); got != server.SpanID() {
				t.Errorf("client parent = %s, want %s", got, server.SpanID())
			}
			if ss.Kind != tracepb.Span_SPAN_KIND_SERVER || cs.Kind != tracepb.Span_SPAN_KIND_CLIENT {
				t.Errorf("kinds %v %v", ss.Kind, cs.Kind)
			}
			if ss.Name != "reviews.default.svc.cluster.local:9080/*" {
				t.Errorf("name %q", ss.Name)
			}
			if ss.StartTimeUnixNano != uint64(t0.UnixNano()) || ss.EndTimeUnixNano != uint64(t0.Add(10*time.Millisecond).UnixNano()) {
				t.Errorf("server times %d..%d", ss.StartTimeUnixNano, ss.EndTimeUnixNano)
			}
			sa, ca := attrs(ss), attrs(cs)
			for k, v := range map[string]string{
				"http.method": "GET", "http.status_code": "200", "response_flags": "-", "guid:x-request-id": "req-1",
				"istio.canonical_service": "reviews", "istio.namespace": "default", "component": "proxy",
				"istio.canonical_revision": "v2",
			} {
				if sa[k] != v {
					t.Errorf("server tag %s = %q, want %q", k, sa[k], v)
				}
			}
			if _, ok := sa["error"]; ok {
				t.Error("server span has error tag for 200")
			}
			if ca["error"] != "true" || ca["http.status_code"] != "503" || ca["response_flags"] != "UH" {
				t.Errorf("client tags %v", ca)
			}
			if cs.Status.GetCode() != tracepb.Status_STATUS_CODE_ERROR {
				t.Errorf("client status %v", cs.Status)
			}
		})
	}
}

func attrs(s *tracepb.Span) map[string]string {
	m := map[string]string{}
	for _, a := range s.Attributes {
		v := a.GetValue()
		switch {
		case v.GetStringValue() != "":
			m[a.Key] = v.GetStringValue()
		case v.GetIntValue() != 0:
			m[a.Key] = itoa(v.GetIntValue())
		default:
			if v.GetBoolValue() {
				m[a.Key] = "true"
			} else {
				m[a.Key] = ""
			}
		}
	}
	return m
}

func itoa(i int64) string {
	return strconv.FormatInt(i, 10)
}

func equalMaps(a, b headerMap) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestSampling(t *testing.T) {
	_, endpoint := startGRPCSink(t)
	tr := newTracer(t, endpoint, 100)
	t.Cleanup(func() { tr.Shutdown(context.Background()) })
	now := time.Now()
	if s := tr.Start(ServerKind, mapHeader{}, "x", now); s == nil {
		t.Error("100%: new trace not sampled")
	} else {
		s.End(now, 200, "")
	}
	if s := tr.Start(ServerKind, mapHeader{"x-b3-sampled": "0"}, "x", now); s != nil {
		t.Error("x-b3-sampled: 0 was sampled")
	}
	if s := tr.Start(ServerKind, mapHeader{"traceparent": "00-" + tid128 + "-" + sid64 + "-00"}, "x", now); s != nil {
		t.Error("traceparent flags 00 was sampled")
	}
	tr.SetSamplePercent(0)
	if s := tr.Start(ServerKind, mapHeader{}, "x", now); s != nil {
		t.Error("0%: new trace sampled")
	}
	if s := tr.Start(ServerKind, mapHeader{"x-b3-traceid": tid128, "x-b3-spanid": sid64}, "x", now); s != nil {
		t.Error("0%: B3 context without decision sampled")
	}
	if s := tr.Start(ServerKind, mapHeader{"x-b3-traceid": tid128, "x-b3-spanid": sid64, "x-b3-sampled": "1"}, "x", now); s == nil {
		t.Error("0%: x-b3-sampled: 1 not sampled")
	} else {
		s.End(now, 200, "")
	}
	tr.SetSamplePercent(50)
	n := 0
	for range 2000 {
		if s := tr.Start(ServerKind, mapHeader{}, "x", now); s != nil {
			n++
			s.End(now, 200, "")
		}
	}
	if n < 800 || n > 1200 {
		t.Errorf("50%%: %d of 2000 sampled", n)
	}
	for _, p := range []float64{-1, 0, 0.01, 50, 100, 1000} {
		tr.SetSamplePercent(p)
		want := min(max(p, 0), 100)
		if got := tr.SamplePercent(); got != want {
			t.Errorf("SetSamplePercent(%v): SamplePercent = %v", p, got)
		}
	}
}

func TestOffAndNil(t *testing.T) {
	tr, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s := tr.Start(ServerKind, mapHeader{"traceparent": "00-" + tid128 + "-" + sid64 + "-01"}, "x", time.Now()); s != nil {
		t.Error("tracing off: Start returned a span")
	}
	var nilTracer *Tracer
	if s := nilTracer.Start(ClientKind, mapHeader{}, "x", time.Now()); s != nil {
		t.Error("nil tracer returned a span")
	}
	var s *Span
	h := headerMap{"traceparent": "keep"}
	s.Inject(h.set)
	s.SetAttributes(attribute.String("a", "b"))
	s.End(time.Now(), 500, "UF")
	if s.TraceID() != "" || len(h) != 1 || h["traceparent"] != "keep" {
		t.Error("nil span changed something")
	}
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Error(err)
	}
	if _, err := New(Options{Endpoint: "grpc://x:1"}); err == nil {
		t.Error("grpc:// endpoint accepted")
	}
}

func TestStartUnsampledAllocs(t *testing.T) {
	_, endpoint := startGRPCSink(t)
	tr := newTracer(t, endpoint, 0)
	t.Cleanup(func() { tr.Shutdown(context.Background()) })
	now := time.Now()
	for name, h := range map[string]Header{
		"traceparent 00":    mapHeader{"traceparent": "00-" + tid128 + "-" + sid64 + "-00"},
		"x-b3-sampled 0":    mapHeader{"x-b3-traceid": tid128, "x-b3-spanid": sid64, "x-b3-sampled": "0"},
		"b3 0":              mapHeader{"b3": "0"},
		"no context, 0%":    mapHeader{},
		"http.Header, 00":   http.Header{"Traceparent": {"00-" + tid128 + "-" + sid64 + "-00"}},
		"http.Header, b3 0": http.Header{"X-B3-Sampled": {"0"}},
	} {
		allocs := testing.AllocsPerRun(100, func() {
			if s := tr.Start(ServerKind, h, "reviews.default.svc.cluster.local:9080/*", now); s != nil {
				t.Fatal("sampled")
			}
		})
		if allocs != 0 {
			t.Errorf("%s: Start allocates %v times", name, allocs)
		}
	}
}

func BenchmarkStartUnsampled(b *testing.B) {
	tr, err := New(Options{Endpoint: "127.0.0.1:1", ServiceName: "reviews", Namespace: "default"})
	if err != nil {
		b.Fatal(err)
	}
	defer tr.Shutdown(context.Background())
	h := http.Header{"Traceparent": {"00-" + tid128 + "-" + sid64 + "-00"}}
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if tr.Start(ServerKind, h, "reviews.default.svc.cluster.local:9080/*", now) != nil {
			b.Fatal("sampled")
		}
	}
}

func BenchmarkStartSampled(b *testing.B) {
	tr, err := New(Options{Endpoint: "127.0.0.1:1", ServiceName: "reviews", Namespace: "default"})
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		tr.Shutdown(ctx)
	}()
	h := http.Header{"Traceparent": {"00-" + tid128 + "-" + sid64 + "-01"}}
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		s := tr.Start(ServerKind, h, "reviews.default.svc.cluster.local:9080/*", now)
		s.End(now, 200, "")
	}
}
