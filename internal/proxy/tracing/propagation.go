package tracing

import (
	"go.opentelemetry.io/otel/trace"
)

// Header names read by Start. They are spelled in Go's canonical MIME form
// so that http.Header.Get finds them without allocating a canonical copy;
// weft's http1 header compares names case-insensitively.
const (
	HeaderTraceparent  = "Traceparent"
	HeaderTracestate   = "Tracestate"
	HeaderB3           = "B3"
	HeaderB3TraceID    = "X-B3-Traceid"
	HeaderB3SpanID     = "X-B3-Spanid"
	HeaderB3ParentSpan = "X-B3-Parentspanid"
	HeaderB3Sampled    = "X-B3-Sampled"
	HeaderB3Flags      = "X-B3-Flags"
)

// Header names written by Span.Inject (lower case, as HTTP/2 requires and
// as Envoy writes them).
const (
	injectTraceparent  = "traceparent"
	injectTracestate   = "tracestate"
	injectB3TraceID    = "x-b3-traceid"
	injectB3SpanID     = "x-b3-spanid"
	injectB3ParentSpan = "x-b3-parentspanid"
	injectB3Sampled    = "x-b3-sampled"
)

// decision is the sampling decision carried by incoming headers.
type decision uint8

const (
	decisionNone decision = iota // no decision: the proxy decides
	decisionSample
	decisionDrop
)

// incoming is the trace context found in request headers.
type incoming struct {
	traceID  trace.TraceID
	spanID   trace.SpanID
	decision decision
	w3c      bool // found in traceparent (tracestate applies)
}

// hasParent reports whether a parent span was found.
func (in *incoming) hasParent() bool { return in.traceID.IsValid() && in.spanID.IsValid() }

// extract reads the trace context of h: W3C traceparent first, then B3
// multi-header, then B3 single-header. An invalid header is ignored, as if
// absent. It does not allocate.
func extract(h Header) incoming {
	if tp := h.Get(HeaderTraceparent); tp != "" {
		if tid, sid, flags, ok := parseTraceparent(tp); ok {
			d := decisionDrop
			if flags&1 == 1 {
				d = decisionSample
			}
			return incoming{traceID: tid, spanID: sid, decision: d, w3c: true}
		}
	}
	if in, ok := parseB3Multi(h); ok {
		return in
	}
	if b3 := h.Get(HeaderB3); b3 != "" {
		if in, ok := parseB3Single(b3); ok {
			return in
		}
	}
	return incoming{}
}

// parseTraceparent parses a W3C traceparent value
// ("00-<32 hex trace id>-<16 hex span id>-<2 hex flags>"). Versions above 00
// are accepted with more fields after the flags, as the spec asks; version ff
// and all-zero ids are invalid.
func parseTraceparent(s string) (tid trace.TraceID, sid trace.SpanID, flags byte, ok bool) {
	if len(s) < 55 {
		return tid, sid, 0, false
	}
	ver, vok := hexByte(s[0], s[1])
	if !vok || ver == 0xff || s[2] != '-' || s[35] != '-' || s[52] != '-' {
		return tid, sid, 0, false
	}
	if len(s) > 55 && (ver == 0 || s[55] != '-') {
		return tid, sid, 0, false
	}
	if !decodeHex(tid[:], s[3:35]) || !decodeHex(sid[:], s[36:52]) {
		return tid, sid, 0, false
	}
	flags, fok := hexByte(s[53], s[54])
	if !fok || !tid.IsValid() || !sid.IsValid() {
		return tid, sid, 0, false
	}
	return tid, sid, flags, true
}

// parseB3Multi reads x-b3-traceid/x-b3-spanid/x-b3-sampled/x-b3-flags. A
// sampling decision alone (x-b3-sampled without ids) is valid.
func parseB3Multi(h Header) (incoming, bool) {
	var in incoming
	switch h.Get(HeaderB3Sampled) {
	case "1", "true":
		in.decision = decisionSample
	case "0", "false":
		in.decision = decisionDrop
	}
	if h.Get(HeaderB3Flags) == "1" { // debug implies sampled
		in.decision = decisionSample
	}
	tid, sid := h.Get(HeaderB3TraceID), h.Get(HeaderB3SpanID)
	if tid == "" && sid == "" {
		return in, in.decision != decisionNone
	}
	var ok bool
	if in.traceID, ok = parseB3TraceID(tid); !ok {
		return incoming{}, false
	}
	if in.spanID, ok = parseB3SpanID(sid); !ok {
		return incoming{}, false
	}
	return in, true
}

// parseB3Single parses the "b3" header:
// "{traceid}-{spanid}[-{sampled}[-{parentspanid}]]" or a lone "0", "1", "d".
func parseB3Single(s string) (incoming, bool) {
	var in incoming
	if len(s) == 1 {
		d, ok := b3SingleDecision(s)
		in.decision = d
		return in, ok
	}
	i := indexDash(s)
	if i < 0 {
		return incoming{}, false
	}
	var ok bool
	if in.traceID, ok = parseB3TraceID(s[:i]); !ok {
		return incoming{}, false
	}
	s = s[i+1:]
	i = indexDash(s)
	sid := s
	if i >= 0 {
		sid = s[:i]
	}
	if in.spanID, ok = parseB3SpanID(sid); !ok {
		return incoming{}, false
	}
	if i < 0 {
		return in, true
	}
	s = s[i+1:]
	i = indexDash(s)
	dec := s
	if i >= 0 {
		dec = s[:i]
		var parent trace.SpanID
		if !decodeHex(parent[:], s[i+1:]) {
			return incoming{}, false
		}
	}
	if in.decision, ok = b3SingleDecision(dec); !ok {
		return incoming{}, false
	}
	return in, true
}

func b3SingleDecision(s string) (decision, bool) {
	switch s {
	case "1", "d":
		return decisionSample, true
	case "0":
		return decisionDrop, true
	}
	return decisionNone, false
}

// parseB3TraceID decodes a 16- or 32-hex-digit B3 trace id; a 64-bit id is
// left-padded with zeros to 128 bits, as Zipkin and Envoy do.
func parseB3TraceID(s string) (tid trace.TraceID, ok bool) {
	switch len(s) {
	case 32:
		ok = decodeHex(tid[:], s)
	case 16:
		ok = decodeHex(tid[8:], s)
	}
	return tid, ok && tid.IsValid()
}

func parseB3SpanID(s string) (sid trace.SpanID, ok bool) {
	if len(s) != 16 {
		return sid, false
	}
	ok = decodeHex(sid[:], s)
	return sid, ok && sid.IsValid()
}

func indexDash(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] == '-' {
			return i
		}
	}
	return -1
}

// decodeHex decodes lower- or upper-case hex s into dst (len(s) == 2*len(dst)).
func decodeHex(dst []byte, s string) bool {
	if len(s) != 2*len(dst) {
		return false
	}
	for i := range dst {
		b, ok := hexByte(s[2*i], s[2*i+1])
		if !ok {
			return false
		}
		dst[i] = b
	}
	return true
}

func hexByte(hi, lo byte) (byte, bool) {
	h, ok1 := hexNibble(hi)
	l, ok2 := hexNibble(lo)
	return h<<4 | l, ok1 && ok2
}

func hexNibble(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// formatTraceparent returns the version-00 traceparent for a sampled span.
func formatTraceparent(tid trace.TraceID, sid trace.SpanID) string {
	var b [55]byte
	copy(b[:], "00-")
	encodeHex(b[3:35], tid[:])
	b[35] = '-'
	encodeHex(b[36:52], sid[:])
	copy(b[52:], "-01")
	return string(b[:])
}

const hexDigits = "0123456789abcdef"

func encodeHex(dst, src []byte) {
	for i, v := range src {
		dst[2*i] = hexDigits[v>>4]
		dst[2*i+1] = hexDigits[v&0x0f]
	}
}
