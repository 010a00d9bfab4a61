// Package tracing is the proxy's tracer: it continues the trace of a request
// (W3C traceparent, B3 multi- and single-header), decides sampling for new
// traces, records one span per request as Envoy/Istio do, and exports spans
// as OTLP (gRPC or HTTP) through the OpenTelemetry SDK.
//
// The decision whether to record is taken here, before the SDK is involved:
// an unsampled request costs a few header reads and no allocation, and the
// SDK runs with an always-sample sampler.
package tracing

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Options configures a Tracer.
type Options struct {
	// Endpoint is the OTLP endpoint: "host:port" → OTLP/gRPC (insecure),
	// "http://host:port[/v1/traces]" → OTLP/HTTP; "" → tracing off (New
	// returns a Tracer whose Start returns nil cheaply).
	Endpoint string
	// ServiceName is istio.canonical_service, e.g. "reviews" (resource
	// service.name = "reviews.default").
	ServiceName string
	Namespace   string
	// NodeID is the xDS node id → tag node_id.
	NodeID string
	// Version is the canonical revision.
	Version string
	// SamplePercent (0..100) applies only when starting a new trace (no
	// incoming sampling decision); the default is set by the caller.
	SamplePercent float64
	Logger        *slog.Logger
}

// Kind is the kind of a proxy span.
type Kind uint8

const (
	// ServerKind is an inbound request (reporter=destination).
	ServerKind Kind = iota
	// ClientKind is an outbound request (reporter=source).
	ClientKind
)

// Header is the read side of a request's headers. Get must match names
// case-insensitively (http.Header and weft's http1.Header both do).
type Header interface {
	Get(key string) string
}

// perMillion is the sampling resolution (Istio's percentages are in
// millionths too).
const perMillion = 1_000_000

// batchTimeout bounds how long a finished span waits before export, so that
// the console shows a request within about a second.
const batchTimeout = time.Second

// Tracer starts the proxy's spans. Its methods are safe for concurrent use;
// a nil *Tracer is off.
type Tracer struct {
	provider *sdktrace.TracerProvider // nil when tracing is off
	tracer   trace.Tracer
	// threshold is the sampling rate for new traces in millionths.
	threshold atomic.Uint64
	// base are the attributes every span gets.
	base []attribute.KeyValue
	log  *slog.Logger
}

// New returns a Tracer exporting to opts.Endpoint. It does not wait for the
// endpoint: spans are exported in the background and dropped (with a log)
// when it cannot be reached.
func New(opts Options) (*Tracer, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	t := &Tracer{log: opts.Logger.With("component", "tracing")}
	t.SetSamplePercent(opts.SamplePercent)
	if opts.Endpoint == "" {
		return t, nil
	}
	exp, err := newExporter(opts.Endpoint)
	if err != nil {
		return nil, err
	}
	svc := opts.ServiceName
	if opts.Namespace != "" {
		svc += "." + opts.Namespace
	}
	res := resource.NewSchemaless(
		attribute.String("service.name", svc),
		attribute.String("service.namespace", opts.Namespace),
		attribute.String("service.version", opts.Version),
	)
	t.provider = sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp, sdktrace.WithBatchTimeout(batchTimeout)),
		sdktrace.WithSampler(sdktrace.AlwaysSample()),
		sdktrace.WithResource(res),
	)
	t.tracer = t.provider.Tracer("github.com/weft-mesh/weft/internal/proxy/tracing")
	t.base = []attribute.KeyValue{
		attribute.String(KeyCanonicalService, opts.ServiceName),
		attribute.String(KeyCanonicalRevision, opts.Version),
		attribute.String(KeyNamespace, opts.Namespace),
		attribute.String(KeyNodeID, opts.NodeID),
		attribute.String(KeyComponent, "proxy"),
	}
	t.log.Info("tracing on", "endpoint", opts.Endpoint, "service", svc, "sample_percent", opts.SamplePercent)
	return t, nil
}

// newExporter picks OTLP/HTTP for an http(s) URL, OTLP/gRPC for host:port.
func newExporter(endpoint string) (sdktrace.SpanExporter, error) {
	ctx := context.Background()
	if strings.HasPrefix(endpoint, "http://") || strings.HasPrefix(endpoint, "https://") {
		u := endpoint
		if rest := u[strings.Index(u, "://")+3:]; !strings.Contains(rest, "/") || strings.HasSuffix(rest, "/") {
			u = strings.TrimSuffix(u, "/") + "/v1/traces"
		}
		exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(u))
		if err != nil {
			return nil, fmt.Errorf("OTLP/HTTP exporter for %s: %w", endpoint, err)
		}
		return exp, nil
	}
	if strings.Contains(endpoint, "://") {
		return nil, fmt.Errorf("tracing endpoint %q: want host:port (OTLP/gRPC) or http://host:port[/v1/traces] (OTLP/HTTP)", endpoint)
	}
	exp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(endpoint), otlptracegrpc.WithInsecure())
	if err != nil {
		return nil, fmt.Errorf("OTLP/gRPC exporter for %s: %w", endpoint, err)
	}
	return exp, nil
}

// Shutdown exports the spans still buffered and stops the exporter.
func (t *Tracer) Shutdown(ctx context.Context) error {
	if t == nil || t.provider == nil {
		return nil
	}
	return t.provider.Shutdown(ctx)
}

// SetSamplePercent sets the sampling rate of new traces (clamped to 0..100).
func (t *Tracer) SetSamplePercent(p float64) {
	if t == nil {
		return
	}
	switch {
	case math.IsNaN(p) || p <= 0:
		p = 0
	case p >= 100:
		p = 100
	}
	t.threshold.Store(uint64(math.Round(p * perMillion / 100)))
}

// SamplePercent returns the sampling rate of new traces.
func (t *Tracer) SamplePercent() float64 {
	if t == nil {
		return 0
	}
	return float64(t.threshold.Load()) * 100 / perMillion
}

// sampleNew decides whether a new trace is recorded.
func (t *Tracer) sampleNew() bool {
	th := t.threshold.Load()
	return th >= perMillion || (th > 0 && rand.Uint64N(perMillion) < th)
}

// Start continues the trace found in h, or starts one sampled at the
// sample percent, and returns the span of this request, or nil when the
// request is not sampled (or tracing is off). Incoming decisions win: an
// unsampled traceparent or x-b3-sampled: 0 is never recorded, a sampled one
// always is.
func (t *Tracer) Start(kind Kind, h Header, name string, start time.Time) *Span {
	if t == nil || t.tracer == nil {
		return nil
	}
	in := extract(h)
	switch in.decision {
	case decisionDrop:
		return nil
	case decisionNone:
		if !t.sampleNew() {
			return nil
		}
	}
	ctx := context.Background()
	if in.hasParent() {
		cfg := trace.SpanContextConfig{
			TraceID: in.traceID, SpanID: in.spanID,
			TraceFlags: trace.FlagsSampled, Remote: true,
		}
		if in.w3c {
			if ts := h.Get(HeaderTracestate); ts != "" {
				if st, err := trace.ParseTraceState(ts); err == nil {
					cfg.TraceState = st
				}
			}
		}
		ctx = trace.ContextWithRemoteSpanContext(ctx, trace.NewSpanContext(cfg))
	}
	sk := trace.SpanKindServer
	if kind == ClientKind {
		sk = trace.SpanKindClient
	}
	_, span := t.tracer.Start(ctx, name,
		trace.WithSpanKind(sk), trace.WithTimestamp(start), trace.WithAttributes(t.base...))
	return &Span{span: span, sc: span.SpanContext(), parent: in.spanID}
}

// Span is one request's span. A nil *Span is a request not sampled: every
// method is a no-op. A Span is used by one request at a time.
type Span struct {
	span   trace.Span
	sc     trace.SpanContext
	parent trace.SpanID // invalid for a root span
}

// Inject writes the trace context for the upstream request, with this span
// as the parent: traceparent (and tracestate), and B3 multi-headers. A nil
// span writes nothing, so the incoming headers pass through as they are.
func (s *Span) Inject(set func(key, value string)) {
	if s == nil {
		return
	}
	tid, sid := s.sc.TraceID(), s.sc.SpanID()
	set(injectTraceparent, formatTraceparent(tid, sid))
	if ts := s.sc.TraceState().String(); ts != "" {
		set(injectTracestate, ts)
	}
	set(injectB3TraceID, tid.String())
	set(injectB3SpanID, sid.String())
	if s.parent.IsValid() {
		set(injectB3ParentSpan, s.parent.String())
	}
	set(injectB3Sampled, "1")
}

// TraceID returns the trace id in hex, for the access log ("" on nil).
func (s *Span) TraceID() string {
	if s == nil {
		return ""
	}
	return s.sc.TraceID().String()
}

// SpanID returns the span id in hex ("" on nil).
func (s *Span) SpanID() string {
	if s == nil {
		return ""
	}
	return s.sc.SpanID().String()
}

// SetAttributes adds tags to the span.
func (s *Span) SetAttributes(a ...attribute.KeyValue) {
	if s == nil {
		return
	}
	s.span.SetAttributes(a...)
}

// End finishes the span with the response status and Envoy's response
// flags ("-" when none): http.status_code, response_flags, and error=true
// with an error span status for 5xx (and for no response, status 0).
func (s *Span) End(end time.Time, status int, flags string) {
	if s == nil {
		return
	}
	if flags == "" {
		flags = "-"
	}
	s.span.SetAttributes(
		attribute.Int(KeyHTTPStatusCode, status),
		attribute.String(KeyResponseFlags, flags),
	)
	if status >= 500 || status == 0 {
		s.span.SetAttributes(attribute.Bool(KeyError, true))
		s.span.SetStatus(codes.Error, errorDescription(status, flags))
	}
	s.span.End(trace.WithTimestamp(end))
}

func errorDescription(status int, flags string) string {
	if status == 0 {
		return "no response, flags " + flags
	}
	return fmt.Sprintf("HTTP %d, flags %s", status, flags)
}
