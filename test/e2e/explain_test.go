package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestExplainLastError first checks weft explain SOURCE URL's walk
// (checkExplainWalk), then applies, one at a time, the configs that make
// each kind of failure on the Bookinfo demo, sends the requests that fail,
// and checks that weft explain --last-error (and --request-id, -o json)
// names the cause and the object to fix from the proxies' live config and
// access logs.
func TestExplainLastError(t *testing.T) {
	m := startDemo(t)
	const pp = "productpage-v1-1.default"
	const gw = "istio-ingressgateway.istio-system"
	dead := m.b.ip(9, 9) // nothing listens there: connections are refused
	hostGet := func(host, path string) int {
		req, err := http.NewRequest(http.MethodGet, m.url(path), nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		resp, err := m.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	page := func() int { return hostGet(m.b.ingress(), "/productpage") }
	checkExplainWalk(t, m, pp)
	steps := []struct {
		name   string
		yaml   string
		proxy  string
		send   func()
		want   string
		wantFx string // the object to fix, as -o json names it
	}{
		{
			name: "UH subset without endpoints",
			yaml: `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v4, labels: {version: v4}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v4}
`,
			proxy:  pp,
			send:   func() { page() },
			want:   "503 UH no healthy upstream: subset v4 of DestinationRule reviews selects version=v4, which no endpoint has (VirtualService reviews http[0] routes to it)",
			wantFx: "DestinationRule default/reviews",
		},
		{
			name: "RBAC deny",
			yaml: `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-get}
spec:
  selector: {matchLabels: {app: reviews}}
  action: DENY
  rules:
  - to:
    - operation: {methods: [GET]}
`,
			proxy:  pp,
			send:   func() { page() },
			want:   "RBAC: denied by AuthorizationPolicy deny-get at reviews-",
			wantFx: "AuthorizationPolicy default/deny-get",
		},
		{
			name:  "NR",
			proxy: gw,
			send:  func() { hostGet("nowhere.example", "/no/such/page") },
			want:  "NR: no route for host nowhere.example",
		},
		{
			name: "UF refused",
			yaml: fmt.Sprintf(`
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: dead}
spec:
  hosts: [dead.example.com]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}]
  endpoints: [{address: %s}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: dead}
spec:
  hosts: [dead.example.com]
  gateways: [bookinfo-gateway]
  http:
  - route:
    - destination: {host: dead.example.com, port: {number: 80}}
`, dead),
			proxy: gw,
			send:  func() { hostGet("dead.example.com", "/") },
			want:  "UF: connection refused by " + dead + ":80",
		},
		{
			name: "outlier ejection",
			yaml: `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: dead}
spec:
  host: dead.example.com
  trafficPolicy:
    outlierDetection: {consecutive5xxErrors: 1, interval: 1s, baseEjectionTime: 5m, maxEjectionPercent: 100}
`,
			proxy:  gw,
			send:   func() { hostGet("dead.example.com", "/") },
			want:   "all 1 endpoints ejected by outlierDetection of DestinationRule dead",
			wantFx: "",
		},
		{
			name: "UO circuit breaker",
			yaml: `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: productpage}
spec:
  host: productpage
  trafficPolicy:
    connectionPool:
      tcp: {maxConnections: 1}
      http: {http1MaxPendingRequests: 1, maxRequestsPerConnection: 1}
`,
			proxy: gw,
			send: func() {
				var wg sync.WaitGroup
				for range 12 {
					wg.Add(1)
					go func() { defer wg.Done(); page() }()
				}
				wg.Wait()
			},
			want:   "UO: circuit breaker maxPendingRequests=1 maxConnections=1",
			wantFx: "DestinationRule default/productpage",
		},
	}
	for i, st := range steps {
		var file string
		if st.yaml != "" {
			file = filepath.Join(t.TempDir(), fmt.Sprintf("step%d.yaml", i))
			if err := os.WriteFile(file, []byte(st.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			m.apply(file)
		}
		var last string
		eventuallyOrNot(t, 20*time.Second, func() error {
			st.send()
			out, err := m.weft("explain", "--last-error", st.proxy)
			last = out
			if err != nil {
				return fmt.Errorf("%s: weft explain: %v\n%s", st.name, err, out)
			}
			if !strings.Contains(out, st.want) {
				return fmt.Errorf("%s: explain says\n%s\nwant %q", st.name, out, st.want)
			}
			return nil
		})
		if t.Failed() {
			for _, k := range []string{"routes", "clusters"} {
				out, _ := m.weft("proxy-config", k, st.proxy)
				t.Logf("proxy-config %s %s:\n%s", k, st.proxy, out)
			}
			out, _ := m.weft("proxy-config", "routes", st.proxy, "-o", "json")
			if i := strings.LastIndex(out, "dead.example.com"); i > 0 {
				t.Logf("routes json:\n%.3000s", out[max(0, i-1500):])
			}
			out, _ = m.weft("proxy-status")
			t.Logf("proxy-status:\n%s", out)
			logs, _ := filepath.Glob(filepath.Join(m.dataDir, "logs", "*gateway*"))
			for _, l := range logs {
				b, _ := os.ReadFile(l)
				t.Logf("%s:\n%s", l, tail(string(b), 3000))
			}
			t.FailNow()
		}
		t.Logf("%s:\n%s", st.name, last)
		if st.name == "RBAC deny" {
			checkExplainWalkDenied(t, m, pp)
		}
		if st.wantFx != "" {
			out, err := m.weft("explain", "--last-error", st.proxy, "-o", "json")
			if err != nil {
				t.Fatalf("%s: weft explain -o json: %v\n%s", st.name, err, out)
			}
			var c struct {
				Text string `json:"text"`
				Fix  struct {
					Kind, Namespace, Name string
				} `json:"fix"`
				Entry struct {
					RequestID string `json:"request_id"`
				} `json:"entry"`
			}
			if err := json.Unmarshal([]byte(out), &c); err != nil {
				t.Fatalf("%s: -o json: %v\n%s", st.name, err, out)
			}
			if got := c.Fix.Kind + " " + c.Fix.Namespace + "/" + c.Fix.Name; got != st.wantFx || !strings.Contains(c.Text, st.want) {
				t.Errorf("%s: -o json fix %q text %q, want %q and %q", st.name, got, c.Text, st.wantFx, st.want)
			}
			// The same request, picked by its x-request-id.
			out, err = m.weft("explain", "--request-id", c.Entry.RequestID, st.proxy)
			if err != nil || c.Entry.RequestID == "" || !strings.Contains(out, st.want) || !strings.Contains(out, c.Entry.RequestID) {
				t.Errorf("%s: --request-id %q: %v\n%s", st.name, c.Entry.RequestID, err, out)
			}
		}
		// The steps on productpage's sidecar undo theirs; the gateway's
		// build on each other (the ServiceEntry stays for the ejection).
		if st.proxy == pp && file != "" {
			if out, err := m.weft("delete", "-f", file); err != nil {
				t.Fatalf("weft delete: %v\n%s", err, out)
			}
			eventually(t, 10*time.Second, func() error {
				if code := page(); code != 200 {
					return fmt.Errorf("page %d after deleting %s", code, st.name)
				}
				return nil
			})
		}
	}
}

// eventuallyOrNot polls fn like eventually but marks the test failed
// without stopping it, so the caller can show what the proxy has.
func eventuallyOrNot(t *testing.T, bound time.Duration, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("not within %s: %v", bound, err)
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// checkExplainWalk applies Istio's reviews-test-v2 routing and checks the
// walk weft explain SOURCE URL shows from productpage's live config: with
// end-user jason the first rule matches (subset v2), without it the first
// rule is skipped for its header and the second matches (subset v1), and
// the destination side's mTLS mode and policies are shown.
func checkExplainWalk(t *testing.T, m *mesh, pp string) {
	t.Helper()
	files := []string{sample(t, "destination-rule-all.yaml"), sample(t, "virtual-service-reviews-test-v2.yaml")}
	for _, f := range files {
		m.apply(f)
	}
	walks := []struct {
		args []string
		want []string
	}{
		{[]string{"-H", "end-user: jason"}, []string{
			"virtual host:  reviews.default.svc.cluster.local:9080",
			"route 0 (http[0].match[0]): MATCHES (from VirtualService default/reviews)",
			"→ outbound|9080|v2|reviews.default.svc.cluster.local",
			"from DestinationRule default/reviews",
			"destination:   reviews-v2-1.default: PeerAuthentication PERMISSIVE, allowed, no AuthorizationPolicy",
			"verdict:       routed",
		}},
		{nil, []string{
			"route 0 (http[0].match[0]): no match: header end-user does not match exact jason",
			"route 1 (http[1]): MATCHES (from VirtualService default/reviews)",
			"→ outbound|9080|v1|reviews.default.svc.cluster.local",
		}},
	}
	for i, w := range walks {
		source := pp
		if i == 1 {
			source = "productpage-v1" // a workload names its one proxy
		}
		args := append([]string{"explain", source, "http://reviews:9080/reviews/0"}, w.args...)
		var out string
		eventually(t, 10*time.Second, func() error {
			var err error
			out, err = m.weft(args...)
			if err != nil {
				return fmt.Errorf("weft %s: %v\n%s", strings.Join(args, " "), err, out)
			}
			for _, want := range w.want {
				if !strings.Contains(out, want) {
					return fmt.Errorf("weft %s says\n%s\nwant %q", strings.Join(args, " "), out, want)
				}
			}
			return nil
		})
		t.Logf("weft %s:\n%s", strings.Join(args, " "), out)
	}
	// From the ingress gateway: the Gateway's listener, bookinfo's rule.
	out, err := m.weft("explain", "istio-ingressgateway.istio-system", "http://"+m.b.ingress()+"/productpage")
	for _, want := range []string{"(http[0].match[0]): MATCHES (from VirtualService default/bookinfo)",
		"→ outbound|9080||productpage.default.svc.cluster.local", "destination:   productpage-v1-1.default: PeerAuthentication", "verdict:       routed"} {
		if err != nil || !strings.Contains(out, want) {
			t.Errorf("explain from the gateway: %v\n%s\nwant %q", err, out, want)
		}
	}
	t.Logf("from the gateway:\n%s", out)
	out, err = m.weft("explain", pp, "http://reviews:9080/reviews/0", "-H", "end-user: jason", "-o", "json")
	if err != nil {
		t.Fatalf("-o json: %v\n%s", err, out)
	}
	var w struct {
		Trace struct {
			Route struct {
				Index    int
				Clusters []struct{ Name string }
			}
		}
		VirtualService struct{ Name string }
		Rule           struct{ Rule, Match int }
	}
	if err := json.Unmarshal([]byte(out), &w); err != nil {
		t.Fatalf("-o json: %v\n%s", err, out)
	}
	if w.Trace.Route.Index != 0 || len(w.Trace.Route.Clusters) != 1 || !strings.Contains(w.Trace.Route.Clusters[0].Name, "|v2|") || w.VirtualService.Name != "reviews" || w.Rule.Rule != 0 {
		t.Errorf("-o json walk: %+v", w)
	}
	for _, f := range files {
		if out, err := m.weft("delete", "-f", f); err != nil {
			t.Fatalf("weft delete -f %s: %v\n%s", f, err, out)
		}
	}
}

// checkExplainWalkDenied checks, with the DENY policy on GETs to reviews in
// place, that the walk runs the destination's RBAC filters: a GET is
// denied by deny-get, a POST allowed.
func checkExplainWalkDenied(t *testing.T, m *mesh, pp string) {
	t.Helper()
	for _, w := range []struct {
		method string
		want   []string
	}{
		{"GET", []string{"PeerAuthentication PERMISSIVE, denied by AuthorizationPolicy deny-get, DENY deny-get", "verdict:       403 at reviews-v"}},
		{"POST", []string{"PeerAuthentication PERMISSIVE, allowed, DENY deny-get", "verdict:       routed"}},
	} {
		out, err := m.weft("explain", pp, "http://reviews:9080/reviews/0", "--method", w.method)
		if err != nil {
			t.Fatalf("weft explain --method %s: %v\n%s", w.method, err, out)
		}
		for _, want := range w.want {
			if !strings.Contains(out, want) {
				t.Errorf("weft explain --method %s says\n%s\nwant %q", w.method, out, want)
			}
		}
		t.Logf("weft explain --method %s:\n%s", w.method, out)
	}
}
