package stats

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

var (
	productpage = Workload{Name: "productpage-v1-1", Namespace: "default", App: "productpage", Version: "v1"}
	reviews     = Workload{Name: "reviews-v2-1", Namespace: "default", App: "reviews", Version: "v2"}
	reviewsSvc  = ServiceFromHost("reviews.default.svc.cluster.local")
)

func TestServiceFromHost(t *testing.T) {
	tests := []struct {
		host string
		want Service
	}{
		{"reviews.default.svc.cluster.local", Service{"reviews.default.svc.cluster.local", "reviews", "default"}},
		{"httpbin.org", Service{"httpbin.org", "httpbin.org", Unknown}},
		{"", Service{"", "", Unknown}},
	}
	for _, tt := range tests {
		if got := ServiceFromHost(tt.host); got != tt.want {
			t.Errorf("ServiceFromHost(%q) = %+v, want %+v", tt.host, got, tt.want)
		}
	}
}

// TestWritePrometheus parses the output with Prometheus's own parser and
// checks the values and Istio's labels.
func TestWritePrometheus(t *testing.T) {
	r := New(0)
	e := r.Edge(Destination, productpage, reviews, reviewsSvc, None)
	if r.Edge(Destination, productpage, reviews, reviewsSvc, None) != e {
		t.Fatal("Edge is not interned")
	}
	r.Request(e, HTTP, 200, "", "", 3*time.Millisecond, 0, 295)
	r.Request(e, HTTP, 200, "", "-", 30*time.Millisecond, 10, 2000)
	r.Request(e, HTTP, 503, "", "UF", 700*time.Microsecond, 0, 91)
	src := r.Edge(Source, productpage, Workload{}, ServiceFromHost("httpbin.org"), UnknownPeer)
	r.Request(src, GRPC, 200, "14", "", time.Second, 5, 5)
	tc := r.TCP(r.Edge(Destination, productpage, reviews, reviewsSvc, MutualTLS))
	tc.Opened()
	tc.Bytes(100, 2000)
	tc.Closed()

	var buf bytes.Buffer
	if err := r.WritePrometheus(&buf); err != nil {
		t.Fatal(err)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(buf.String()))
	if err != nil {
		t.Fatalf("Prometheus cannot parse the output: %v\n%s", err, buf.String())
	}
	find := func(fam string, want map[string]string) []float64 {
		t.Helper()
		var out []float64
		for _, m := range fams[fam].GetMetric() {
			ok := true
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if got[k] != v {
					ok = false
				}
			}
			if !ok {
				continue
			}
			switch {
			case m.Counter != nil:
				out = append(out, m.GetCounter().GetValue())
			case m.Histogram != nil:
				out = append(out, float64(m.GetHistogram().GetSampleCount()), m.GetHistogram().GetSampleSum())
			}
		}
		return out
	}
	checks := []struct {
		fam    string
		labels map[string]string
		want   []float64
	}{
		{"istio_requests_total", map[string]string{"reporter": "destination", "response_code": "200", "response_flags": "-",
			"source_workload": "productpage-v1-1", "destination_workload": "reviews-v2-1", "destination_service_name": "reviews",
			"destination_service_namespace": "default", "destination_app": "reviews", "destination_version": "v2",
			"source_canonical_service": "productpage", "destination_canonical_revision": "v2", "source_principal": "unknown",
			"connection_security_policy": "none", "request_protocol": "http", "grpc_response_status": ""}, []float64{2}},
		{"istio_requests_total", map[string]string{"response_code": "503", "response_flags": "UF"}, []float64{1}},
		{"istio_requests_total", map[string]string{"reporter": "source", "request_protocol": "grpc", "grpc_response_status": "14",
			"destination_workload": "unknown", "destination_service": "httpbin.org", "destination_service_namespace": "unknown"}, []float64{1}},
		{"istio_request_duration_milliseconds", map[string]string{"response_code": "200", "reporter": "destination"}, []float64{2, 33}},
		{"istio_response_bytes", map[string]string{"response_code": "200", "reporter": "destination"}, []float64{2, 2295}},
		{"istio_request_bytes", map[string]string{"response_code": "200", "reporter": "destination"}, []float64{2, 10}},
		{"istio_tcp_connections_opened_total", map[string]string{"connection_security_policy": "mutual_tls"}, []float64{1}},
		{"istio_tcp_connections_closed_total", map[string]string{"connection_security_policy": "mutual_tls"}, []float64{1}},
		{"istio_tcp_sent_bytes_total", map[string]string{"request_protocol": "tcp"}, []float64{2000}},
		{"istio_tcp_received_bytes_total", map[string]string{"request_protocol": "tcp"}, []float64{100}},
	}
	for _, c := range checks {
		got := find(c.fam, c.labels)
		if len(got) != len(c.want) {
			t.Errorf("%s%v: got %v, want %v", c.fam, c.labels, got, c.want)
			continue
		}
		for i := range got {
			if d := got[i] - c.want[i]; d > 1e-9 || d < -1e-9 {
				t.Errorf("%s%v: got %v, want %v", c.fam, c.labels, got, c.want)
			}
		}
	}
	// Buckets are cumulative and Envoy's: 3 ms lands in le=5, 30 ms in le=50.
	for _, m := range fams["istio_request_duration_milliseconds"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "response_code" && l.GetValue() == "200" && m.GetHistogram().GetSampleCount() == 2 {
				b := m.GetHistogram().GetBucket()
				if len(b) != len(durationBuckets)+1 { // with +Inf
					t.Fatalf("%d buckets, want %d", len(b), len(durationBuckets))
				}
				for _, bk := range b {
					want := uint64(0)
					switch {
					case bk.GetUpperBound() >= 50:
						want = 2
					case bk.GetUpperBound() >= 5:
						want = 1
					}
					if bk.GetCumulativeCount() != want {
						t.Errorf("bucket le=%v = %d, want %d", bk.GetUpperBound(), bk.GetCumulativeCount(), want)
					}
				}
			}
		}
	}
	if !model.UTF8Validation.IsValidMetricName("istio_requests_total") {
		t.Fatal("metric name")
	}
}

func TestLabelEscaping(t *testing.T) {
	r := New(0)
	e := r.Edge(Source, Workload{Name: "a\"b\\c\nd"}, Workload{}, Service{}, None)
	r.Request(e, HTTP, 200, "", "", 0, 0, 0)
	var buf bytes.Buffer
	r.WritePrometheus(&buf)
	p := expfmt.NewTextParser(model.UTF8Validation)
	if _, err := p.TextToMetricFamilies(strings.NewReader(buf.String())); err != nil {
		t.Fatalf("escaped labels do not parse: %v", err)
	}
	if !strings.Contains(buf.String(), `source_workload="a\"b\\c\nd"`) {
		t.Errorf("label not escaped:\n%s", buf.String())
	}
}

func TestMaxSeries(t *testing.T) {
	r := New(2)
	e := r.Edge(Source, productpage, reviews, reviewsSvc, None)
	for code := 200; code < 210; code++ {
		r.Request(e, HTTP, code, "", "", 0, 0, 0)
	}
	if r.Dropped() != 8 {
		t.Errorf("dropped %d, want 8", r.Dropped())
	}
}

func TestRequestAllocatesNothing(t *testing.T) {
	r := New(0)
	e := r.Edge(Source, productpage, reviews, reviewsSvc, None)
	r.Request(e, HTTP, 200, "", "", time.Millisecond, 0, 100)
	if n := testing.AllocsPerRun(1000, func() { r.Request(e, HTTP, 200, "", "", time.Millisecond, 0, 100) }); n != 0 {
		t.Errorf("Request allocates %v times per call on an existing series", n)
	}
}

func BenchmarkRequest(b *testing.B) {
	r := New(0)
	e := r.Edge(Source, productpage, reviews, reviewsSvc, None)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r.Request(e, HTTP, 200, "", "", time.Millisecond, 0, 100)
		}
	})
}

func BenchmarkWritePrometheus(b *testing.B) {
	r := New(0)
	for i := range 100 {
		e := r.Edge(Source, productpage, Workload{Name: "w" + string(rune('a'+i%26)) + string(rune('a'+i/26))}, reviewsSvc, None)
		r.Request(e, HTTP, 200, "", "", time.Millisecond, 0, 100)
	}
	b.ReportAllocs()
	for b.Loop() {
		r.WritePrometheus(&bytes.Buffer{})
	}
}
