package dataplane

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/weft-mesh/weft/internal/proxy/accesslog"
	"github.com/weft-mesh/weft/internal/proxy/stats"
)

// TestTelemetry sends requests through a sidecar pair and checks that both
// sides report them with Istio's labels, the peer identity crossed the hop
// without reaching the app, and the access log has Envoy's fields.
func TestTelemetry(t *testing.T) {
	clientTel := Telemetry{Stats: stats.New(0), AccessLog: accesslog.New(accesslog.Options{}),
		Self: stats.Workload{Name: "productpage-v1-1", Namespace: "default", App: "productpage", Version: "v1"}}
	serverTel := Telemetry{Stats: stats.New(0), AccessLog: accesslog.New(accesslog.Options{}),
		Self:    stats.Workload{Name: "reviews-v1-1", Namespace: "default", App: "reviews", Version: "v1"},
		Service: "reviews.default.svc.cluster.local"}
	leaked := make(chan string, 100)
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if v := r.Header.Get(PeerHeader); v != "" {
			leaked <- v
		}
		fmt.Fprint(w, "ok")
	})
	m := newMeshTel(t, clientTel, serverTel, app)
	c := m.proxyClient()
	svc := fmt.Sprintf("http://reviews:%d", m.port)
	for range 3 {
		if code, _, _ := get(t, c, svc+"/api/1"); code != 200 {
			t.Fatalf("GET /api/1: %d", code)
		}
	}
	get(t, c, svc+"/none")
	get(t, c, svc+"/nothing")
	// A spoofed peer header from the app is replaced by the sidecar's own.
	get(t, c, svc+"/api/2", PeerHeader, "evil;ns;app;v;")
	select {
	case v := <-leaked:
		t.Errorf("the app saw %s: %q", PeerHeader, v)
	default:
	}

	metrics := func(r *stats.Registry) string {
		var b bytes.Buffer
		if err := r.WritePrometheus(&b); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	// Each side records once its response is written: the server's may
	// land just after the client has its answer.
	waitFor(t, "both sides' 4th request", func() bool {
		return strings.Contains(metrics(serverTel.Stats), `response_flags="-"} 4`) && len(serverTel.AccessLog.Tail(0)) == 4 &&
			strings.Contains(metrics(clientTel.Stats), `response_flags="-"} 4`)
	})
	client, server := metrics(clientTel.Stats), metrics(serverTel.Stats)
	want := []struct {
		side, text string
		labels     []string
	}{
		{"client", client, []string{`istio_requests_total{reporter="source",source_workload="productpage-v1-1"`,
			`destination_workload="reviews-v1-1"`, `destination_app="reviews"`, `destination_service="reviews.default.svc.cluster.local"`,
			`destination_service_name="reviews"`, `response_code="200"`, `response_flags="-"`, `connection_security_policy="unknown"`, `} 4`}},
		{"client UH", client, []string{`destination_workload="unknown"`, `response_code="503"`, `response_flags="UH"`, `} 1`}},
		{"client NR", client, []string{`response_code="404"`, `response_flags="NR"`, `destination_service="reviews"`}},
		{"server", server, []string{`istio_requests_total{reporter="destination",source_workload="productpage-v1-1"`,
			`source_app="productpage"`, `destination_workload="reviews-v1-1"`, `destination_service_name="reviews"`,
			`connection_security_policy="none"`, `response_code="200"`, `} 4`}},
		{"server duration", server, []string{`istio_request_duration_milliseconds_count{reporter="destination"`, `} 4`}},
	}
	for _, w := range want {
		found := false
		for _, line := range strings.Split(w.text, "\n") {
			ok := true
			for _, l := range w.labels {
				ok = ok && strings.Contains(line, l)
			}
			found = found || ok
		}
		if !found {
			t.Errorf("%s: no series with %v in\n%s", w.side, w.labels, w.text)
		}
	}
	if strings.Contains(server, `source_workload="evil"`) {
		t.Errorf("a spoofed peer identity was reported:\n%s", server)
	}

	waitFor(t, "6 client log lines", func() bool { return len(clientTel.AccessLog.Tail(0)) == 6 })
	lines := clientTel.AccessLog.Tail(0)
	if len(lines) != 6 {
		t.Fatalf("client access log has %d lines, want 6", len(lines))
	}
	var e map[string]any
	if err := json.Unmarshal(lines[0], &e); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]any{"method": "GET", "path": "/api/1", "response_code": 200.0, "response_flags": "-",
		"upstream_cluster": fmt.Sprintf("outbound|%d||reviews.default.svc.cluster.local", m.port), "upstream_host": m.v1.String(),
		"authority": fmt.Sprintf("reviews:%d", m.port), "protocol": "HTTP/1.1", "route_name": "default",
		"response_code_details": "via_upstream"} {
		if e[k] != v {
			t.Errorf("access log %s = %v, want %v (%s)", k, e[k], v, lines[0])
		}
	}
	if id, _ := e["request_id"].(string); len(id) != 36 {
		t.Errorf("request_id = %v", e["request_id"])
	}
	if local, _ := e["downstream_local_address"].(string); local == "" {
		t.Errorf("access log downstream_local_address is empty (%s)", lines[0])
	}
	if err := json.Unmarshal(lines[3], &e); err != nil || e["response_flags"] != "UH" || e["response_code_details"] != "no_healthy_upstream" {
		t.Errorf("UH line: %s", lines[3])
	}
	// The server side logs the same request id.
	var s map[string]any
	if err := json.Unmarshal(serverTel.AccessLog.Tail(0)[0], &s); err != nil {
		t.Fatal(err)
	}
	var first map[string]any
	json.Unmarshal(lines[0], &first)
	if s["request_id"] != first["request_id"] || s["upstream_cluster"] != fmt.Sprintf("inbound|%d||", m.port) ||
		s["response_code_details"] != "via_upstream" || s["downstream_local_address"] != m.v1.String() {
		t.Errorf("server line %v does not match client line %v", s, first)
	}
}

// TestSpanName checks the operation names of the proxy's spans: the
// route's decorator when the control plane set one, else Istio's
// HOST:PORT/* from the inbound service or the outbound virtual host.
func TestSpanName(t *testing.T) {
	sidecar := &telemetry{Telemetry: Telemetry{Service: "reviews.default.svc.cluster.local"}}
	for _, tc := range []struct {
		name                 string
		inbound              bool
		vhost, op, authority string
		port                 uint16
		want                 string
	}{
		{"the route's decorator", false, "*:8080", "productpage.default.svc.cluster.local:9080/productpage", "", 8080,
			"productpage.default.svc.cluster.local:9080/productpage"},
		{"the decorator inbound too", true, "inbound|http|9080", "custom:9080/*", "", 9080, "custom:9080/*"},
		{"inbound: the proxy's service", true, "inbound|http|9080", "", "reviews:9080", 9080, "reviews.default.svc.cluster.local:9080/*"},
		{"outbound: the virtual host", false, "ratings.default.svc.cluster.local:9080", "", "ratings:9080", 9080,
			"ratings.default.svc.cluster.local:9080/*"},
		{"passthrough: the authority", false, "allow_any", "", "example.com:80", 80, "example.com:80/*"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := &observation{inbound: tc.inbound, authority: tc.authority}
			if got := sidecar.spanName(o, tc.vhost, tc.op, tc.port); got != tc.want {
				t.Errorf("spanName = %q, want %q", got, tc.want)
			}
		})
	}
}
