package traces

import (
	"encoding/hex"
	"strconv"
	"strings"
	"time"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// unknownService names a resource without service.name, as OTel SDKs do.
const unknownService = "unknown_service"

// fromOTLP converts OTLP resource spans to stored spans. Spans with an
// invalid trace or span id are dropped and counted in rejected.
func fromOTLP(rss []*tracepb.ResourceSpans) (spans []*Span, rejected int) {
	for _, rs := range rss {
		proc := &Process{ServiceName: unknownService}
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.Key == "service.name" {
				if v := kv.GetValue().GetStringValue(); v != "" {
					proc.ServiceName = v
				}
				continue
			}
			proc.Tags = append(proc.Tags, tagOf(kv.Key, kv.GetValue()))
		}
		for _, ss := range rs.ScopeSpans {
			for _, sp := range ss.Spans {
				if s := spanOf(sp, proc); s != nil {
					spans = append(spans, s)
				} else {
					rejected++
				}
			}
		}
	}
	return spans, rejected
}

func spanOf(sp *tracepb.Span, proc *Process) *Span {
	if len(sp.TraceId) != 16 || len(sp.SpanId) != 8 || allZero(sp.TraceId) || allZero(sp.SpanId) {
		return nil
	}
	s := &Span{
		TraceID: hex.EncodeToString(sp.TraceId),
		SpanID:  hex.EncodeToString(sp.SpanId),
		Name:    sp.Name,
		Kind:    kindName(sp.Kind),
		Start:   time.Unix(0, int64(sp.StartTimeUnixNano)),
		Process: proc,
	}
	if len(sp.ParentSpanId) == 8 && !allZero(sp.ParentSpanId) {
		s.ParentSpanID = hex.EncodeToString(sp.ParentSpanId)
	}
	if sp.EndTimeUnixNano > sp.StartTimeUnixNano {
		s.Duration = time.Duration(sp.EndTimeUnixNano - sp.StartTimeUnixNano)
	}
	s.Tags = make([]Tag, 0, len(sp.Attributes)+3)
	hasError := false
	for _, kv := range sp.Attributes {
		t := tagOf(kv.Key, kv.GetValue())
		if t.Key == "error" {
			hasError = true
			s.Error = tagString(t) == "true"
		}
		s.Tags = append(s.Tags, t)
	}
	if s.Kind != "" {
		s.Tags = append(s.Tags, Tag{Key: "span.kind", Type: "string", Value: s.Kind})
	}
	switch sp.GetStatus().GetCode() {
	case tracepb.Status_STATUS_CODE_ERROR:
		s.Error = true
		s.Tags = append(s.Tags, Tag{Key: "otel.status_code", Type: "string", Value: "ERROR"})
		if !hasError {
			s.Tags = append(s.Tags, Tag{Key: "error", Type: "bool", Value: true})
		}
		if m := sp.GetStatus().GetMessage(); m != "" {
			s.Tags = append(s.Tags, Tag{Key: "otel.status_description", Type: "string", Value: m})
		}
	case tracepb.Status_STATUS_CODE_OK:
		s.Tags = append(s.Tags, Tag{Key: "otel.status_code", Type: "string", Value: "OK"})
	}
	return s
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func kindName(k tracepb.Span_SpanKind) string {
	switch k {
	case tracepb.Span_SPAN_KIND_SERVER:
		return "server"
	case tracepb.Span_SPAN_KIND_CLIENT:
		return "client"
	case tracepb.Span_SPAN_KIND_PRODUCER:
		return "producer"
	case tracepb.Span_SPAN_KIND_CONSUMER:
		return "consumer"
	case tracepb.Span_SPAN_KIND_INTERNAL:
		return "internal"
	}
	return ""
}

// tagOf types an OTLP attribute as Jaeger does; arrays, maps and bytes
// become their string form.
func tagOf(key string, v *commonpb.AnyValue) Tag {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return Tag{Key: key, Type: "string", Value: x.StringValue}
	case *commonpb.AnyValue_BoolValue:
		return Tag{Key: key, Type: "bool", Value: x.BoolValue}
	case *commonpb.AnyValue_IntValue:
		return Tag{Key: key, Type: "int64", Value: x.IntValue}
	case *commonpb.AnyValue_DoubleValue:
		return Tag{Key: key, Type: "float64", Value: x.DoubleValue}
	case *commonpb.AnyValue_BytesValue:
		return Tag{Key: key, Type: "string", Value: hex.EncodeToString(x.BytesValue)}
	case *commonpb.AnyValue_ArrayValue:
		parts := make([]string, 0, len(x.ArrayValue.GetValues()))
		for _, e := range x.ArrayValue.GetValues() {
			parts = append(parts, tagString(tagOf("", e)))
		}
		return Tag{Key: key, Type: "string", Value: "[" + strings.Join(parts, ",") + "]"}
	case *commonpb.AnyValue_KvlistValue:
		parts := make([]string, 0, len(x.KvlistValue.GetValues()))
		for _, e := range x.KvlistValue.GetValues() {
			parts = append(parts, e.Key+"="+tagString(tagOf("", e.GetValue())))
		}
		return Tag{Key: key, Type: "string", Value: "{" + strings.Join(parts, ",") + "}"}
	}
	return Tag{Key: key, Type: "string", Value: ""}
}

// tagString is a tag's value as a query compares it.
func tagString(t Tag) string {
	switch v := t.Value.(type) {
	case string:
		return v
	case bool:
		return strconv.FormatBool(v)
	case int64:
		return strconv.FormatInt(v, 10)
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	return ""
}

// normalizeTraceID lower-cases a hex trace id and pads a 64-bit one.
func normalizeTraceID(id string) string {
	id = strings.ToLower(id)
	if len(id) < 32 {
		id = strings.Repeat("0", 32-len(id)) + id
	}
	return id
}
