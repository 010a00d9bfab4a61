package traces_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/weft-mesh/weft/internal/controlplane/telemetry/traces"
	"github.com/weft-mesh/weft/internal/proxy/tracing"
)

// TestForwarder has a receiver forward what the proxy's tracer exports to
// a second receiver (the user's collector), over OTLP/gRPC and OTLP/HTTP on
// loopback: both stores end with the same trace and resource.
func TestForwarder(t *testing.T) {
	for _, tc := range []struct {
		name     string
		endpoint func(g, h net.Addr) string
	}{
		{"OTLP/gRPC", func(g, _ net.Addr) string { return g.String() }},
		{"OTLP/HTTP", func(_, h net.Addr) string { return "http://" + h.String() }},
		{"OTLP/HTTP with a path", func(_, h net.Addr) string { return "http://" + h.String() + "/v1/traces" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			far := traces.NewStore(traces.StoreOptions{})
			farRcv := traces.NewReceiver(far, nil)
			fg, fh, err := farRcv.Start("127.0.0.1:0", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(farRcv.Close)
			fwd, err := traces.NewForwarder(tc.endpoint(fg, fh), nil)
			if err != nil {
				t.Fatal(err)
			}
			near := traces.NewStore(traces.StoreOptions{})
			rcv := traces.NewReceiver(near, nil)
			rcv.ForwardTo(fwd)
			g, _, err := rcv.Start("127.0.0.1:0", traces.Off)
			if err != nil {
				t.Fatal(err)
			}
			tr, err := tracing.New(tracing.Options{Endpoint: g.String(), ServiceName: "details", Namespace: "default", SamplePercent: 100})
			if err != nil {
				t.Fatal(err)
			}
			now := time.Now()
			sp := tr.Start(tracing.ServerKind, hdr{}, "details.default.svc.cluster.local:9080/*", now)
			sp.End(now.Add(time.Millisecond), 200, "")
			if err := tr.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
			rcv.Close()
			if err := fwd.Close(5 * time.Second); err != nil {
				t.Fatal(err)
			}
			if sent, dropped, failed := fwd.Stats(); sent != 1 || dropped != 0 || failed != 0 {
				t.Errorf("forwarder stats: sent %d, dropped %d, failed %d; want 1, 0, 0", sent, dropped, failed)
			}
			for name, st := range map[string]*traces.Store{"the control plane's": near, "the collector's": far} {
				got, ok := st.Get(sp.TraceID())
				if !ok || len(got.Spans) != 1 {
					t.Fatalf("%s store: trace %s: %v", name, sp.TraceID(), got)
				}
				if s := got.Spans[0]; s.SpanID != sp.SpanID() || s.Process.ServiceName != "details.default" || s.Name != "details.default.svc.cluster.local:9080/*" {
					t.Errorf("%s store: span %+v", name, s)
				}
			}
		})
	}
}

// TestForwarderCollectorDown forwards to a port nothing listens on: exports
// are counted as failed, the receiver still stores them, Close returns.
func TestForwarderCollectorDown(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := lis.Addr().String()
	lis.Close()
	fwd, err := traces.NewForwarder("http://"+dead, nil)
	if err != nil {
		t.Fatal(err)
	}
	st := traces.NewStore(traces.StoreOptions{})
	rcv := traces.NewReceiver(st, nil)
	rcv.ForwardTo(fwd)
	g, _, err := rcv.Start("127.0.0.1:0", traces.Off)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := tracing.New(tracing.Options{Endpoint: g.String(), ServiceName: "details", Namespace: "default", SamplePercent: 100})
	if err != nil {
		t.Fatal(err)
	}
	sp := tr.Start(tracing.ServerKind, hdr{}, "details.default.svc.cluster.local:9080/*", time.Now())
	sp.End(time.Now(), 200, "")
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	rcv.Close()
	fwd.Close(5 * time.Second)
	if sent, _, failed := fwd.Stats(); sent != 0 || failed != 1 {
		t.Errorf("sent %d, failed %d; want 0 and 1", sent, failed)
	}
	if _, ok := st.Get(sp.TraceID()); !ok {
		t.Error("the receiver did not store the trace it could not forward")
	}
}

// TestForwarderEndpoint refuses endpoints that are neither host:port nor http(s) URLs.
func TestForwarderEndpoint(t *testing.T) {
	for _, e := range []string{"grpc://127.0.0.1:4317", "jaeger", ""} {
		if f, err := traces.NewForwarder(e, nil); err == nil {
			f.Close(time.Second)
			t.Errorf("NewForwarder(%q) accepted it", e)
		}
	}
}
