package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/weft-mesh/weft/test/jaeger"
)

// Service names and span names as Istio gives them in Jaeger: the proxy's
// istio.canonical_service and namespace, and per hop the destination's
// host:port; the ingress's root is named by its route (the Bookinfo
// VirtualService's exact /productpage match to productpage:9080).
const (
	ingressService = "istio-ingressgateway.istio-system"
	ingressRoot    = "productpage.default.svc.cluster.local:9080/productpage"
)

func hopName(service string) string { return service + ".default.svc.cluster.local:9080/*" }

// TestJaeger runs Bookinfo with a real Jaeger as the tracing backend, once
// with every proxy exporting to it (weft run/gateway --otlp-endpoint) and
// once with the proxies exporting to the control plane, which forwards to
// it (--otlp-forward). In both, Jaeger must show one trace per page load,
// with Istio's service names, span names and parent/child links, and a
// trace started outside the mesh (W3C traceparent, B3 multi- and
// single-header) must be continued: same trace id, the caller's span as
// the ingress span's parent.
func TestJaeger(t *testing.T) {
	for _, tc := range []struct {
		name    string
		flags   func(j *jaeger.Server) []string
		forward bool
	}{
		{"proxies export to Jaeger", func(j *jaeger.Server) []string { return []string{"--otlp-endpoint", j.OTLPGRPC} }, false},
		{"the control plane forwards to Jaeger", func(j *jaeger.Server) []string { return []string{"--otlp-forward", j.OTLPHTTP} }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBlock(t)
			j := jaeger.Start(t, b.ip(0, 3))
			m := startDemoIn(t, b, nil, tc.flags(j)...)
			checkJaeger(t, m, j, tc.forward)
		})
	}
}

// pageLoad is one request through the ingress and what its trace must show.
type pageLoad struct {
	name      string
	requestID string
	header    http.Header
	// traceID and parent are the caller's trace and span ("": none).
	traceID, parent string
	ratings         bool // served by reviews v2 or v3, which call ratings
}

func randHex(n int) string {
	var sb strings.Builder
	for sb.Len() < n {
		fmt.Fprintf(&sb, "%016x", rand.Uint64())
	}
	return sb.String()[:n]
}

func checkJaeger(t *testing.T, m *mesh, j *jaeger.Server, forwarded bool) {
	const plain = 6
	var loads []*pageLoad
	for i := range plain {
		loads = append(loads, &pageLoad{name: fmt.Sprintf("page %d", i)})
	}
	tp := &pageLoad{name: "W3C traceparent", traceID: randHex(32), parent: randHex(16)}
	tp.header = http.Header{"Traceparent": {"00-" + tp.traceID + "-" + tp.parent + "-01"}}
	b3 := &pageLoad{name: "B3 multi-header", traceID: randHex(32), parent: randHex(16)}
	b3.header = http.Header{"X-B3-Traceid": {b3.traceID}, "X-B3-Spanid": {b3.parent}, "X-B3-Sampled": {"1"}}
	b3s := &pageLoad{name: "B3 single header", traceID: randHex(32), parent: randHex(16)}
	b3s.header = http.Header{"B3": {b3s.traceID + "-" + b3s.parent + "-1"}}
	loads = append(loads, tp, b3, b3s)
	// The demo loads the page once itself before it says it is running:
	// from then on the ingress sees only the test's requests.
	eventually(t, 30*time.Second, func() error {
		if !strings.Contains(m.demo.out.String(), "weft demo is running") {
			return errors.New("the demo has not said it is running")
		}
		return nil
	})
	since := time.Now()
	for _, l := range loads {
		l.requestID = "jaeger-e2e-" + randHex(16)
		req, _ := http.NewRequest("GET", m.url("/productpage"), nil)
		for k, v := range l.header {
			req.Header[k] = v
		}
		req.Header.Set("X-Request-Id", l.requestID)
		resp, err := m.client.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", l.name, err)
		}
		body, _ := readAll(resp)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: HTTP %d: %.300s", l.name, resp.StatusCode, body)
		}
		sb := servedBy.FindStringSubmatch(body)
		if sb == nil {
			t.Fatalf("%s: the page names no reviews instance: %.300s", l.name, body)
		}
		l.ratings = !strings.HasPrefix(sb[1], "reviews-v1-")
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ids := map[*pageLoad]string{}
	for _, l := range loads {
		if id := waitTrace(t, ctx, j, l); id != "" {
			ids[l] = id
		}
	}
	// Every trace has its spans; one more of the proxies' export rounds
	// (a second) would bring any extra span, of a request counted twice.
	time.Sleep(1500 * time.Millisecond)
	for _, l := range loads {
		if ids[l] == "" {
			continue
		}
		tr, err := j.Trace(ctx, ids[l])
		if err != nil {
			t.Errorf("%s: trace %s: %v", l.name, ids[l], err)
			continue
		}
		checkTraceShape(t, l, tr)
		t.Logf("%s: trace %s, %d spans, root parent %q", l.name, tr.TraceID, len(tr.Spans), l.parent)
		if l.traceID != "" && tr.TraceID != l.traceID {
			t.Errorf("%s: Jaeger's trace is %s, want the caller's %s", l.name, tr.TraceID, l.traceID)
		}
		checkConsole(t, m, l, tr, forwarded)
	}
	// And no trace of anything else: as many ingress traces as requests.
	all, err := j.Traces(ctx, jaeger.Query{Service: ingressService, Since: since, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != len(loads) {
		t.Errorf("Jaeger has %d traces through the ingress since the first request, want %d", len(all), len(loads))
	}
	services, err := j.Services(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{ingressService, "productpage.default", "details.default", "reviews.default", "ratings.default"} {
		if !slices.Contains(services, want) {
			t.Errorf("Jaeger's services %v lack %s", services, want)
		}
	}
}

func readAll(resp *http.Response) (string, error) {
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// wantSpans is the number of spans of a page load's trace: the ingress's,
// and productpage's inbound plus a client and a server span per call to
// details and reviews, and reviews' to ratings when v2 or v3 served.
func (l *pageLoad) wantSpans() int {
	if l.ratings {
		return 8
	}
	return 6
}

// waitTrace finds the one trace in Jaeger whose ingress span has the page
// load's x-request-id, waits until all its spans arrived and returns its id
// ("" after reporting an error).
func waitTrace(t *testing.T, ctx context.Context, j *jaeger.Server, l *pageLoad) string {
	t.Helper()
	var last string
	for {
		found, err := j.Traces(ctx, jaeger.Query{Service: ingressService, Tags: map[string]string{"guid:x-request-id": l.requestID}})
		switch {
		case err != nil:
			last = err.Error()
		case len(found) > 1:
			var ids []string
			for _, tr := range found {
				ids = append(ids, tr.TraceID)
			}
			t.Errorf("%s: %d traces in Jaeger for one request (%v)", l.name, len(found), ids)
			return ""
		case len(found) == 1:
			tr, err := j.Trace(ctx, found[0].TraceID)
			if err == nil && len(tr.Spans) >= l.wantSpans() {
				return tr.TraceID
			}
			if err == nil {
				last = fmt.Sprintf("trace %s has %d of %d spans: %s", tr.TraceID, len(tr.Spans), l.wantSpans(), describe(tr))
			} else if !errors.Is(err, jaeger.ErrNotFound) {
				last = err.Error()
			}
		default:
			last = "no trace yet"
		}
		select {
		case <-ctx.Done():
			t.Errorf("%s (x-request-id %s): no complete trace in Jaeger: %s", l.name, l.requestID, last)
			return ""
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// describe lists a trace's spans, service and name, for failure messages.
func describe(tr *jaeger.Trace) string {
	var s []string
	for _, sp := range tr.Spans {
		s = append(s, fmt.Sprintf("%s %s %s(%s) <- %s", sp.SpanID, tr.Service(sp), sp.OperationName, sp.Tag("span.kind"), sp.Parent()))
	}
	sort.Strings(s)
	return "\n\t" + strings.Join(s, "\n\t")
}

// checkTraceShape checks a page load's trace against Istio's: one root,
// the ingress's, child of the caller's span when there was one; every
// other span's parent in the trace; every sidecar's server span named by
// its own service and the child of a client span of the same name (the
// caller's side of the hop) or of the ingress; every client span named by
// the service it calls, with one successful server span of that service as
// its child (more when the caller's sidecar retried: a failed attempt
// leaves an error span, as with Envoy); every span with the request's
// x-request-id.
func checkTraceShape(t *testing.T, l *pageLoad, tr *jaeger.Trace) {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Errorf("%s: trace %s: %s%s", l.name, tr.TraceID, fmt.Sprintf(format, args...), describe(tr))
	}
	byID := map[string]jaeger.Span{}
	children := map[string][]jaeger.Span{}
	for _, sp := range tr.Spans {
		byID[sp.SpanID] = sp
	}
	var roots []jaeger.Span
	for _, sp := range tr.Spans {
		if sp.TraceID != tr.TraceID {
			fail("span %s has trace id %s", sp.SpanID, sp.TraceID)
		}
		if id := sp.Tag("guid:x-request-id"); id != l.requestID {
			fail("span %s (%s) has x-request-id %q, want %q: another request's span", sp.SpanID, sp.OperationName, id, l.requestID)
		}
		if _, ok := byID[sp.Parent()]; ok {
			children[sp.Parent()] = append(children[sp.Parent()], sp)
		} else {
			roots = append(roots, sp)
		}
	}
	if len(roots) != 1 {
		fail("%d spans without a parent in the trace, want 1 (the ingress's)", len(roots))
		return
	}
	root := roots[0]
	if tr.Service(root) != ingressService || root.OperationName != ingressRoot {
		fail("the root is %s %q, want %s %q", tr.Service(root), root.OperationName, ingressService, ingressRoot)
	}
	if root.Parent() != l.parent {
		fail("the root's parent is %q, want %q (the caller's span)", root.Parent(), l.parent)
	}
	services := map[string]int{}
	retried := map[string]int{} // service → failed attempts retried
	for _, sp := range tr.Spans {
		svc := tr.Service(sp)
		services[svc]++
		if sp.SpanID == root.SpanID {
			continue
		}
		short, ok := strings.CutSuffix(svc, ".default")
		if !ok {
			fail("span %s from service %q, want NAME.default", sp.SpanID, svc)
			continue
		}
		parent := byID[sp.Parent()]
		switch kind := sp.Tag("span.kind"); kind {
		case "server":
			if sp.OperationName != hopName(short) {
				fail("%s's server span is named %q, want %q", svc, sp.OperationName, hopName(short))
			}
			if parent.SpanID != root.SpanID && (parent.OperationName != sp.OperationName || parent.Tag("span.kind") != "client") {
				fail("%s's server span's parent is %s %q, want the caller's client span %q", svc, tr.Service(parent), parent.OperationName, sp.OperationName)
			}
		case "client":
			kids, ok := children[sp.SpanID], 0
			for _, k := range kids {
				if k.Tag("span.kind") != "server" || k.OperationName != sp.OperationName {
					fail("%s's client span %q has a child %s %q, want server spans of that name", svc, sp.OperationName, tr.Service(k), k.OperationName)
				}
				if k.Tag("error") != "true" {
					ok++
				} else {
					retried[tr.Service(k)]++
				}
			}
			if ok != 1 {
				fail("%s's client span %q has %d children, %d of them successful: want one successful attempt", svc, sp.OperationName, len(kids), ok)
			}
			if parent.Tag("span.kind") != "server" || tr.Service(parent) != svc {
				fail("%s's client span %q has parent %s %q, want its own server span", svc, sp.OperationName, tr.Service(parent), parent.OperationName)
			}
		default:
			fail("span %s (%s) has span.kind %q", sp.SpanID, svc, kind)
		}
	}
	want := map[string]int{ingressService: 1, "productpage.default": 3, "details.default": 1, "reviews.default": 1}
	if l.ratings {
		want["reviews.default"], want["ratings.default"] = 2, 1
	}
	n := l.wantSpans()
	for svc, r := range retried {
		want[svc] += r
		n += r
		t.Logf("%s: trace %s: %d failed attempts at %s, retried", l.name, tr.TraceID, r, svc)
	}
	if len(tr.Spans) != n {
		fail("%d spans, want %d", len(tr.Spans), n)
	}
	for svc, n := range want {
		if services[svc] != n {
			fail("%d spans of %s, want %d (services %v)", services[svc], svc, n, services)
		}
	}
}

// checkConsole compares the control plane's store with Jaeger: with
// forwarding both hold the same spans; with the proxies exporting straight
// to Jaeger the console has none of them.
func checkConsole(t *testing.T, m *mesh, l *pageLoad, tr *jaeger.Trace, forwarded bool) {
	t.Helper()
	resp, err := http.Get(m.b.api() + "/api/v1/traces/" + tr.TraceID)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Data []struct {
			Spans []struct{ SpanID string }
		}
	}
	body, _ := readAll(resp)
	if !forwarded {
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: the console has trace %s (HTTP %d) though the proxies export to Jaeger only", l.name, tr.TraceID, resp.StatusCode)
		}
		return
	}
	if resp.StatusCode != 200 {
		t.Errorf("%s: the console's trace %s: HTTP %d: %.200s", l.name, tr.TraceID, resp.StatusCode, body)
		return
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil || len(got.Data) != 1 {
		t.Errorf("%s: the console's trace %s: %v %.200s", l.name, tr.TraceID, err, body)
		return
	}
	var console, inJaeger []string
	for _, sp := range got.Data[0].Spans {
		console = append(console, sp.SpanID)
	}
	for _, sp := range tr.Spans {
		inJaeger = append(inJaeger, sp.SpanID)
	}
	sort.Strings(console)
	sort.Strings(inJaeger)
	if !slices.Equal(console, inJaeger) {
		t.Errorf("%s: the console's spans %v differ from Jaeger's %v", l.name, console, inJaeger)
	}
}
