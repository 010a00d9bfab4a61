package traces_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/weft-mesh/weft/internal/controlplane/telemetry/traces"
	"github.com/weft-mesh/weft/internal/proxy/tracing"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// hdr is a tracing.Header over a plain map of lower-case names.
type hdr map[string]string

func (h hdr) Get(k string) string { return h[strings.ToLower(k)] }

// TestTracerToReceiver is the whole path: the proxy's tracer exports a
// server span and its client span over real OTLP/gRPC to the receiver on a
// loopback port, and Find returns the trace with the right parent.
func TestTracerToReceiver(t *testing.T) {
	st := traces.NewStore(traces.StoreOptions{})
	rcv := traces.NewReceiver(st, nil)
	gaddr, haddr, err := rcv.Start("127.0.0.1:0", traces.Off)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rcv.Close)
	if haddr != nil {
		t.Errorf("HTTP receiver is off but bound %s", haddr)
	}
	tr, err := tracing.New(tracing.Options{Endpoint: gaddr.String(), ServiceName: "reviews", Namespace: "default", SamplePercent: 100})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	server := tr.Start(tracing.ServerKind, hdr{}, "reviews.default.svc.cluster.local:9080/*", now)
	up := hdr{}
	server.Inject(func(k, v string) { up[k] = v })
	client := tr.Start(tracing.ClientKind, up, "ratings.default.svc.cluster.local:9080/*", now.Add(time.Millisecond))
	client.End(now.Add(3*time.Millisecond), 500, "")
	server.End(now.Add(5*time.Millisecond), 200, "")
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	found := st.Find(traces.Query{Service: "reviews.default", Tags: map[string]string{"http.status_code": "500", "error": "true"}})
	if len(found) != 1 || found[0].TraceID != server.TraceID() {
		t.Fatalf("Find = %+v, want trace %s", found, server.TraceID())
	}
	if s := found[0]; s.Spans != 2 || s.RootOperation != "reviews.default.svc.cluster.local:9080/*" || s.Errors != 1 {
		t.Errorf("summary %+v", s)
	}
	got, _ := st.Get(server.TraceID())
	bySpan := map[string]*traces.Span{}
	for _, sp := range got.Spans {
		bySpan[sp.SpanID] = sp
	}
	ss, cs := bySpan[server.SpanID()], bySpan[client.SpanID()]
	if ss == nil || cs == nil {
		t.Fatalf("spans %v", got.Spans)
	}
	if ss.ParentSpanID != "" || ss.Kind != "server" {
		t.Errorf("server span: parent %q kind %q", ss.ParentSpanID, ss.Kind)
	}
	if cs.ParentSpanID != server.SpanID() || cs.Kind != "client" {
		t.Errorf("client span: parent %q kind %q, want parent %s", cs.ParentSpanID, cs.Kind, server.SpanID())
	}
}

func exportRequest() *collectortrace.ExportTraceServiceRequest {
	return &collectortrace.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
		Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{
			{Key: "service.name", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: "details.default"}}},
		}},
		ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{{
			TraceId: bytes.Repeat([]byte{0xab}, 16), SpanId: bytes.Repeat([]byte{0xcd}, 8),
			Name: "details.default.svc.cluster.local:9080/*", Kind: tracepb.Span_SPAN_KIND_SERVER,
			StartTimeUnixNano: 1_700_000_000_000_000_000, EndTimeUnixNano: 1_700_000_000_002_000_000,
			Attributes: []*commonpb.KeyValue{{Key: "http.status_code", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: 404}}}},
		}, {
			TraceId: make([]byte, 16), SpanId: bytes.Repeat([]byte{1}, 8), Name: "bad ids",
		}}}},
	}}}
}

const otlpJSON = `{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"details.default"}}]},
 "scopeSpans":[{"spans":[{"traceId":"abababababababababababababababab","spanId":"cdcdcdcdcdcdcdcd","parentSpanId":"",
 "name":"details.default.svc.cluster.local:9080/*","kind":2,"startTimeUnixNano":"1700000000000000000","endTimeUnixNano":"1700000000002000000",
 "attributes":[{"key":"http.status_code","value":{"intValue":"404"}}]}]}]}]}`

func TestHTTPReceiver(t *testing.T) {
	pb, _ := proto.Marshal(exportRequest())
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(pb)
	zw.Close()
	tests := []struct {
		name, ct, enc string
		body          []byte
		code          int
		stored        int
	}{
		{"protobuf", "application/x-protobuf", "", pb, 200, 1},
		{"protobuf gzip", "application/x-protobuf", "gzip", gz.Bytes(), 200, 1},
		{"json", "application/json", "", []byte(otlpJSON), 200, 1},
		{"json bad id", "application/json", "", []byte(strings.Replace(otlpJSON, `"cdcdcdcdcdcdcdcd"`, `"xyz"`, 1)), 400, 0},
		{"garbage protobuf", "application/x-protobuf", "", []byte("\xff\xff\xff"), 400, 0},
		{"bad gzip", "application/x-protobuf", "gzip", pb, 400, 0},
		{"text", "text/plain", "", pb, 415, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := traces.NewStore(traces.StoreOptions{})
			srv := httptest.NewServer(traces.NewReceiver(st, nil).HTTPHandler())
			defer srv.Close()
			req, _ := http.NewRequest("POST", srv.URL+"/v1/traces", bytes.NewReader(tt.body))
			req.Header.Set("Content-Type", tt.ct)
			if tt.enc != "" {
				req.Header.Set("Content-Encoding", tt.enc)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.code {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.code)
			}
			if spans, _, _ := st.Stats(); spans != tt.stored {
				t.Errorf("stored %d spans, want %d", spans, tt.stored)
			}
			if tt.stored == 1 {
				tr, ok := st.Get(strings.Repeat("ab", 16))
				if !ok || tr.Spans[0].SpanID != "cdcdcdcdcdcdcdcd" || tr.Spans[0].Duration != 2*time.Millisecond || tr.Spans[0].Process.ServiceName != "details.default" {
					t.Errorf("stored %+v", tr)
				}
			}
		})
	}
}

func TestGRPCPartialSuccess(t *testing.T) {
	st := traces.NewStore(traces.StoreOptions{})
	resp, err := traces.NewReceiver(st, nil).Export(context.Background(), exportRequest())
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetPartialSuccess().GetRejectedSpans() != 1 {
		t.Errorf("partial success = %v, want 1 rejected", resp.GetPartialSuccess())
	}
	b, _ := json.Marshal(resp.GetPartialSuccess().GetErrorMessage())
	if len(b) < 5 {
		t.Error("no error message for rejected spans")
	}
}
