package tracing

import (
	"net/http"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/trace"
)

// mapHeader is a Header keyed by lower-case names, matched
// case-insensitively without allocating.
type mapHeader map[string]string

func (m mapHeader) Get(k string) string {
	for n, v := range m {
		if strings.EqualFold(n, k) {
			return v
		}
	}
	return ""
}

const (
	tid128 = "4bf92f3577b34da6a3ce929d0e0e4736"
	sid64  = "00f067aa0ba902b7"
)

func TestParseTraceparent(t *testing.T) {
	tests := []struct {
		name, in string
		ok       bool
		tid, sid string
		flags    byte
	}{
		{"sampled", "00-" + tid128 + "-" + sid64 + "-01", true, tid128, sid64, 1},
		{"not sampled", "00-" + tid128 + "-" + sid64 + "-00", true, tid128, sid64, 0},
		{"upper case hex", "00-" + strings.ToUpper(tid128) + "-" + sid64 + "-01", true, tid128, sid64, 1},
		{"future version with more fields", "01-" + tid128 + "-" + sid64 + "-01-extra", true, tid128, sid64, 1},
		{"version 00 with more fields", "00-" + tid128 + "-" + sid64 + "-01-extra", false, "", "", 0},
		{"version ff", "ff-" + tid128 + "-" + sid64 + "-01", false, "", "", 0},
		{"zero trace id", "00-" + strings.Repeat("0", 32) + "-" + sid64 + "-01", false, "", "", 0},
		{"zero span id", "00-" + tid128 + "-" + strings.Repeat("0", 16) + "-01", false, "", "", 0},
		{"short", "00-" + tid128 + "-" + sid64, false, "", "", 0},
		{"bad hex", "00-" + strings.Replace(tid128, "4", "g", 1) + "-" + sid64 + "-01", false, "", "", 0},
		{"bad separator", "00_" + tid128 + "-" + sid64 + "-01", false, "", "", 0},
		{"bad flags", "00-" + tid128 + "-" + sid64 + "-0x", false, "", "", 0},
		{"empty", "", false, "", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tid, sid, flags, ok := parseTraceparent(tt.in)
			if ok != tt.ok {
				t.Fatalf("ok = %v, want %v", ok, tt.ok)
			}
			if !ok {
				return
			}
			if tid.String() != tt.tid || sid.String() != tt.sid || flags != tt.flags {
				t.Errorf("got %s %s %02x, want %s %s %02x", tid, sid, flags, tt.tid, tt.sid, tt.flags)
			}
		})
	}
}

func TestExtract(t *testing.T) {
	padded := "0000000000000000a3ce929d0e0e4736"
	tests := []struct {
		name     string
		h        mapHeader
		tid, sid string
		d        decision
	}{
		{"none", mapHeader{}, "", "", decisionNone},
		{"traceparent sampled", mapHeader{"traceparent": "00-" + tid128 + "-" + sid64 + "-01"}, tid128, sid64, decisionSample},
		{"traceparent unsampled", mapHeader{"traceparent": "00-" + tid128 + "-" + sid64 + "-00"}, tid128, sid64, decisionDrop},
		{"traceparent wins over b3", mapHeader{
			"traceparent":  "00-" + tid128 + "-" + sid64 + "-01",
			"x-b3-traceid": "a3ce929d0e0e4736", "x-b3-spanid": "1111111111111111", "x-b3-sampled": "0",
		}, tid128, sid64, decisionSample},
		{"invalid traceparent falls back to b3", mapHeader{
			"traceparent": "garbage", "x-b3-traceid": tid128, "x-b3-spanid": sid64, "x-b3-sampled": "1",
		}, tid128, sid64, decisionSample},
		{"b3 multi 128-bit", mapHeader{"x-b3-traceid": tid128, "x-b3-spanid": sid64, "x-b3-sampled": "1"}, tid128, sid64, decisionSample},
		{"b3 multi 64-bit padded", mapHeader{"x-b3-traceid": "a3ce929d0e0e4736", "x-b3-spanid": sid64, "x-b3-sampled": "1"}, padded, sid64, decisionSample},
		{"b3 multi sampled true", mapHeader{"x-b3-traceid": tid128, "x-b3-spanid": sid64, "x-b3-sampled": "true"}, tid128, sid64, decisionSample},
		{"b3 multi not sampled", mapHeader{"x-b3-traceid": tid128, "x-b3-spanid": sid64, "x-b3-sampled": "0"}, tid128, sid64, decisionDrop},
		{"b3 multi no decision", mapHeader{"x-b3-traceid": tid128, "x-b3-spanid": sid64}, tid128, sid64, decisionNone},
		{"b3 debug flag", mapHeader{"x-b3-traceid": tid128, "x-b3-spanid": sid64, "x-b3-flags": "1"}, tid128, sid64, decisionSample},
		{"b3 sampled 0 alone", mapHeader{"x-b3-sampled": "0"}, "", "", decisionDrop},
		{"b3 multi bad trace id", mapHeader{"x-b3-traceid": "xyz", "x-b3-spanid": sid64, "x-b3-sampled": "1"}, "", "", decisionNone},
		{"b3 multi 48-bit trace id", mapHeader{"x-b3-traceid": "a3ce929d0e0e", "x-b3-spanid": sid64}, "", "", decisionNone},
		{"b3 multi missing span id", mapHeader{"x-b3-traceid": tid128, "x-b3-sampled": "1"}, "", "", decisionNone},
		{"b3 single", mapHeader{"b3": tid128 + "-" + sid64 + "-1-" + "1111111111111111"}, tid128, sid64, decisionSample},
		{"b3 single no decision", mapHeader{"b3": tid128 + "-" + sid64}, tid128, sid64, decisionNone},
		{"b3 single debug", mapHeader{"b3": "a3ce929d0e0e4736-" + sid64 + "-d"}, padded, sid64, decisionSample},
		{"b3 single not sampled", mapHeader{"b3": tid128 + "-" + sid64 + "-0"}, tid128, sid64, decisionDrop},
		{"b3 single deny only", mapHeader{"b3": "0"}, "", "", decisionDrop},
		{"b3 single bad decision", mapHeader{"b3": tid128 + "-" + sid64 + "-x"}, "", "", decisionNone},
		{"b3 single bad parent", mapHeader{"b3": tid128 + "-" + sid64 + "-1-zz"}, "", "", decisionNone},
		{"b3 single bad", mapHeader{"b3": "nonsense"}, "", "", decisionNone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := extract(tt.h)
			var tid, sid string
			if in.traceID.IsValid() {
				tid = in.traceID.String()
			}
			if in.spanID.IsValid() {
				sid = in.spanID.String()
			}
			if tid != tt.tid || sid != tt.sid || in.decision != tt.d {
				t.Errorf("extract = %q %q %d, want %q %q %d", tid, sid, in.decision, tt.tid, tt.sid, tt.d)
			}
		})
	}
}

// TestHTTPHeaderCanonical checks that the names Start reads are found in an
// http.Header whatever the case they were set with.
func TestHTTPHeaderCanonical(t *testing.T) {
	h := http.Header{}
	h.Set("traceparent", "00-"+tid128+"-"+sid64+"-01")
	h.Set("x-b3-sampled", "1")
	if got := h.Get(HeaderTraceparent); got == "" {
		t.Error("traceparent not found under", HeaderTraceparent)
	}
	if got := h.Get(HeaderB3Sampled); got != "1" {
		t.Error("x-b3-sampled not found under", HeaderB3Sampled)
	}
	for _, k := range []string{HeaderTraceparent, HeaderTracestate, HeaderB3, HeaderB3TraceID, HeaderB3SpanID, HeaderB3ParentSpan, HeaderB3Sampled, HeaderB3Flags} {
		if http.CanonicalHeaderKey(k) != k {
			t.Errorf("%s is not canonical (%s): http.Header.Get would allocate", k, http.CanonicalHeaderKey(k))
		}
	}
}

func TestFormatTraceparent(t *testing.T) {
	var tid trace.TraceID
	var sid trace.SpanID
	decodeHex(tid[:], tid128)
	decodeHex(sid[:], sid64)
	want := "00-" + tid128 + "-" + sid64 + "-01"
	if got := formatTraceparent(tid, sid); got != want {
		t.Errorf("formatTraceparent = %q, want %q", got, want)
	}
}

func FuzzParseTraceparent(f *testing.F) {
	f.Add("00-" + tid128 + "-" + sid64 + "-01")
	f.Add("00-" + tid128 + "-" + sid64 + "-00")
	f.Add("cc-" + tid128 + "-" + sid64 + "-01-what-the-future-holds")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		tid, sid, flags, ok := parseTraceparent(s)
		if !ok {
			return
		}
		if !tid.IsValid() || !sid.IsValid() {
			t.Fatalf("%q: accepted invalid ids", s)
		}
		// What we write for it parses back to the same ids.
		tid2, sid2, flags2, ok := parseTraceparent(formatTraceparent(tid, sid))
		if !ok || tid2 != tid || sid2 != sid || flags2 != 1 {
			t.Fatalf("%q: round trip gave %s %s %x %v", s, tid2, sid2, flags, ok)
		}
	})
}

func FuzzParseB3(f *testing.F) {
	f.Add(tid128+"-"+sid64+"-1-"+sid64, tid128, sid64, "1")
	f.Add("a3ce929d0e0e4736-"+sid64, "a3ce929d0e0e4736", sid64, "0")
	f.Add("0", "", "", "")
	f.Add("d", "x", "y", "true")
	f.Fuzz(func(t *testing.T, single, traceID, spanID, sampled string) {
		for _, in := range []incoming{
			func() incoming { in, _ := parseB3Single(single); return in }(),
			func() incoming {
				in, _ := parseB3Multi(mapHeader{"x-b3-traceid": traceID, "x-b3-spanid": spanID, "x-b3-sampled": sampled})
				return in
			}(),
		} {
			if in.traceID.IsValid() != in.spanID.IsValid() {
				t.Fatalf("half a context: %+v", in)
			}
			if in.decision > decisionDrop {
				t.Fatalf("bad decision %d", in.decision)
			}
		}
	})
}
