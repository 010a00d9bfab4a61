package stats

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// TestOverrides: a dimension upserted on requests_total only, a standard
// label replaced and one removed on the duration histogram; series that end
// up with equal labels are summed, and the output parses.
func TestOverrides(t *testing.T) {
	r := New(0)
	e := r.Edge(Destination, productpage, reviews, reviewsSvc, None)
	ov := NewOverrides(map[Skip]FamilyOverride{
		SkipRequests: {Dims: []string{"request_host"}},
		SkipDuration: {Remove: []string{"response_flags"}, Dims: []string{"destination_service"}},
	})
	if got := strings.Join(ov.Dims, ","); got != "destination_service,request_host" {
		t.Fatalf("Dims = %s", got)
	}
	dims := func(svc, host string) string { return svc + DimSeparator + host }
	r.RequestOverridden(e, HTTP, 200, "", "-", time.Millisecond, 0, 10, 0, ov, dims("reviews:9080", "reviews:9080"))
	r.RequestOverridden(e, HTTP, 200, "", "UF", time.Millisecond, 0, 10, 0, ov, dims("reviews:9080", "reviews:9080"))
	r.RequestOverridden(e, HTTP, 200, "", "-", time.Millisecond, 0, 10, 0, ov, dims("reviews:9080", "reviews.default:9080"))
	r.Request(e, HTTP, 200, "", "-", time.Millisecond, 0, 10) // a chain without overrides

	var buf bytes.Buffer
	if err := r.WritePrometheus(&buf); err != nil {
		t.Fatal(err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(buf.String()))
	if err != nil {
		t.Fatalf("Prometheus cannot parse the output: %v\n%s", err, buf.String())
	}
	byHost := map[string]float64{}
	for _, m := range fams["istio_requests_total"].GetMetric() {
		host := "(none)"
		for _, l := range m.GetLabel() {
			if l.GetName() == "request_host" {
				host = l.GetValue()
			}
		}
		byHost[host] += m.GetCounter().GetValue()
	}
	if byHost["reviews:9080"] != 2 || byHost["reviews.default:9080"] != 1 || byHost["(none)"] != 1 {
		t.Errorf("requests by request_host: %v", byHost)
	}
	var durations float64
	for _, m := range fams["istio_request_duration_milliseconds"].GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if _, ok := labels["request_host"]; ok {
			t.Errorf("request_host on the duration histogram: %v", labels)
		}
		if _, ok := labels["response_flags"]; ok && labels["destination_service"] == "reviews:9080" {
			t.Errorf("response_flags not removed: %v", labels)
		}
		if labels["destination_service"] == "reviews:9080" && m.GetHistogram().GetSampleCount() != 3 {
			t.Errorf("the three overridden requests are one series after the removal, got count %d", m.GetHistogram().GetSampleCount())
		}
		durations += float64(m.GetHistogram().GetSampleCount())
	}
	if durations != 4 {
		t.Errorf("durations counted %v, want 4", durations)
	}
}
