package translate

import (
	"strings"
	"testing"

	xdstype "github.com/cncf/xds/go/xds/type/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/encoding/protojson"
)

const telemetryMeshAndNamespace = `apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: mesh-default, namespace: istio-system}
spec:
  tracing: [{randomSamplingPercentage: 10, customTags: {cluster: {literal: {value: laptop}}}}]
  accessLogging: [{filter: {expression: "response.code >= 400"}}]
---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: default, namespace: default}
spec:
  tracing: [{randomSamplingPercentage: 50}]
`

const telemetryProductpage = `apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: productpage, namespace: default}
spec:
  selector: {matchLabels: {app: productpage}}
  metrics:
  - overrides:
    - match: {metric: REQUEST_COUNT, mode: CLIENT}
      disabled: true
  accessLogging: [{disabled: true}]
`

// TestTelemetryPrecedence: the workload's Telemetry overrides the
// namespace's, which overrides the root namespace's, field by field.
func TestTelemetryPrecedence(t *testing.T) {
	out := buildFor(t, telemetryMeshAndNamespace+"---\n"+telemetryProductpage, Mesh{})
	var seen int
	eachHCM(out, func(l *listener.Listener, m *hcm.HttpConnectionManager) {
		seen++
		if got := m.GetTracing().GetRandomSampling().GetValue(); got != 50 {
			t.Errorf("%s: sampling %v, want the namespace's 50", l.GetName(), got)
		}
		if tags := m.GetTracing().GetCustomTags(); len(tags) != 1 || tags[0].GetLiteral().GetValue() != "laptop" {
			t.Errorf("%s: custom tags %v, want the root's", l.GetName(), tags)
		}
		if len(m.GetAccessLog()) != 0 {
			t.Errorf("%s: the workload disabled access logging", l.GetName())
		}
		stats := false
		for _, hf := range m.GetHttpFilters() {
			stats = stats || hf.GetName() == StatsFilter
		}
		if want := l.GetName() != VirtualInbound; stats != want {
			t.Errorf("%s: istio.stats filter present %v, want %v (REQUEST_COUNT disabled for CLIENT only)", l.GetName(), stats, want)
		}
	})
	if seen == 0 {
		t.Fatal("no connection managers")
	}
	// Another workload of the namespace keeps the root's filtered access log.
	objs := buildFor(t, telemetryMeshAndNamespace, Mesh{})
	eachHCM(objs, func(l *listener.Listener, m *hcm.HttpConnectionManager) {
		if len(m.GetAccessLog()) != 1 || m.GetAccessLog()[0].GetFilter().GetStatusCodeFilter().GetComparison().GetValue().GetDefaultValue() != 400 {
			t.Errorf("%s: access log %v, want one filtered on response.code >= 400", l.GetName(), m.GetAccessLog())
		}
	})
}

func TestAccessLogFilterExpressions(t *testing.T) {
	for _, ok := range []string{"response.code >= 400", "response.code == 503 || response.code < 200", "response.code != 200 && response.code > 100"} {
		if _, err := accessLogFilter(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"request.headers['x'] == 'y'", "response.code >= abc", ""} {
		if _, err := accessLogFilter(bad); err == nil {
			t.Errorf("%q: want an error", bad)
		}
	}
}

// TestVersionsStable: building the same input twice gives the same content
// versions (maps inside typed configs are packed deterministically), so a
// proxy is not pushed config that did not change.
func TestVersionsStable(t *testing.T) {
	for range 5 {
		a := buildFor(t, telemetryMeshAndNamespace+"---\n"+telemetryProductpage, Mesh{})
		b := buildFor(t, telemetryMeshAndNamespace+"---\n"+telemetryProductpage, Mesh{})
		for typ, v := range a.Versions {
			if b.Versions[typ] != v {
				t.Fatalf("%s: version %s then %s for the same input", typ, v, b.Versions[typ])
			}
		}
	}
}

// TestMetricTagOverrides: tag overrides merge per tag across scopes into
// the istio.stats filter (dimensions and tags_to_remove, per mode); an
// expression weft cannot evaluate is left out.
func TestMetricTagOverrides(t *testing.T) {
	cfg := `apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: mesh-default, namespace: istio-system}
spec:
  metrics:
  - overrides:
    - match: {metric: REQUEST_COUNT}
      tagOverrides:
        request_host: {value: request.host}
        odd: {value: "size(request.headers)"}
---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: productpage, namespace: default}
spec:
  selector: {matchLabels: {app: productpage}}
  metrics:
  - overrides:
    - match: {metric: REQUEST_COUNT, mode: SERVER}
      tagOverrides: {request_host: {operation: REMOVE}}
`
	out := buildFor(t, cfg, Mesh{})
	got := map[bool]string{}
	eachHCM(out, func(l *listener.Listener, m *hcm.HttpConnectionManager) {
		for _, hf := range m.GetHttpFilters() {
			if hf.GetName() != StatsFilter {
				continue
			}
			ts := &xdstype.TypedStruct{}
			hf.GetTypedConfig().UnmarshalTo(ts)
			js, _ := protojson.Marshal(ts.GetValue())
			got[l.GetName() == VirtualInbound] = string(js)
		}
	})
	want := map[bool]string{
		true:  `{"metrics":[{"dimensions":{},"name":"requests_total","tags_to_remove":["request_host"]}]}`,
		false: `{"metrics":[{"dimensions":{"request_host":"request.host"},"name":"requests_total","tags_to_remove":[]}]}`,
	}
	for inbound, w := range want {
		if g := strings.ReplaceAll(got[inbound], " ", ""); g != w {
			t.Errorf("inbound=%v: istio.stats config %s, want %s", inbound, g, w)
		}
	}
}

// eachHCM calls fn with every HTTP connection manager of out's listeners.
func eachHCM(out *Output, fn func(*listener.Listener, *hcm.HttpConnectionManager)) {
	for _, r := range out.Listeners {
		l := r.(*listener.Listener)
		for _, fc := range l.GetFilterChains() {
			for _, f := range fc.GetFilters() {
				m := &hcm.HttpConnectionManager{}
				if f.GetTypedConfig().UnmarshalTo(m) == nil {
					fn(l, m)
				}
			}
		}
	}
}
