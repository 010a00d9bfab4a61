package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonv1 "go.opentelemetry.io/proto/otlp/common/v1"
	resourcev1 "go.opentelemetry.io/proto/otlp/resource/v1"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/weft-mesh/weft/internal/proxy/xdsclient"
)

// Bounds the soak gives the control plane's stores.
const (
	soakMaxSpans  = 20000
	soakMaxBytes  = 8 << 20
	soakMaxSeries = 5000
	// soakRSSLimit is the control plane's resident memory it must stay
	// under with the stores full (measured: about 70 MiB).
	soakRSSLimit = 256 << 20
)

// TestStoresStayBoundedUnderLoad floods the control plane's embedded trace
// store over OTLP/HTTP (about 6000 spans/s) and its metrics store with
// ever-new series from four proxies' /stats/prometheus (2000 new series per
// scrape round), and reads the stores' sizes and the process's memory from
// its own /metrics every 2 s: the stores never pass their bounds and, once
// full, memory stops growing. WEFT_SOAK_DURATION sets the load's length
// (default 40s; the 10-minute run: WEFT_SOAK_DURATION=10m).
func TestStoresStayBoundedUnderLoad(t *testing.T) {
	duration := 40 * time.Second
	if v := os.Getenv("WEFT_SOAK_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("WEFT_SOAK_DURATION=%q: %v", v, err)
		}
		duration = d
	}
	b := newBlock(t)
	cp := b.controlPlaneIP()
	start(t, "control-plane", "--data-dir", t.TempDir(), "--xds-address", cp+":15010", "--http-address", cp+":15014",
		"--secure-xds-address", "off", "--console-address", "off", "--otlp-grpc-address", "off", "--otlp-http-address", cp+":4318",
		"--trace-store-max-spans", fmt.Sprint(soakMaxSpans), "--trace-store-max-bytes", fmt.Sprint(soakMaxBytes),
		"--metrics-max-series", fmt.Sprint(soakMaxSeries), "--metrics-retention", "1m")
	waitHTTP(t, b.api()+"/api/v1/proxies", 30*time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), duration)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	for i := 1; i <= 4; i++ {
		startChurningProxy(t, ctx, &wg, b, i)
	}
	var sentSpans atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		sendSpans(ctx, "http://"+cp+":4318/v1/traces", &sentSpans)
	}()

	type reading struct {
		at                                            time.Duration
		spans, bytes, series, evicted, rss, heapInuse float64
	}
	var readings []reading
	begin := time.Now()
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-tick.C:
		}
		m, err := scrapeGauges(b.api() + "/metrics")
		if err != nil {
			t.Fatalf("reading the control plane's /metrics: %v", err)
		}
		r := reading{time.Since(begin).Round(time.Second), m["weft_trace_store_spans"], m["weft_trace_store_bytes"],
			m["weft_metrics_store_series"], m["weft_metrics_store_evicted_series_total"], m["process_resident_memory_bytes"], m["go_memstats_heap_inuse_bytes"]}
		readings = append(readings, r)
		if r.spans > soakMaxSpans || r.bytes > soakMaxBytes || r.series > soakMaxSeries {
			t.Fatalf("at %v a store is past its bound: %.0f spans (max %d), %.0f bytes (max %d), %.0f series (max %d)",
				r.at, r.spans, soakMaxSpans, r.bytes, soakMaxBytes, r.series, soakMaxSeries)
		}
		if r.rss > soakRSSLimit {
			t.Fatalf("at %v the control plane's RSS is %.0f MiB, over %d MiB", r.at, r.rss/(1<<20), soakRSSLimit>>20)
		}
	}
	last := readings[len(readings)-1]
	if last.spans == 0 || last.series == 0 || last.evicted == 0 || sentSpans.Load() < 2*soakMaxSpans {
		t.Fatalf("the load did not fill the stores: %d spans sent, last reading %+v", sentSpans.Load(), last)
	}
	// Once the stores are full (the second half), memory stays flat: the
	// last quarter's peak within 25% + 8 MiB of the second quarter's.
	q := len(readings) / 4
	peak := func(rs []reading) (rss, heap float64) {
		for _, r := range rs {
			rss, heap = max(rss, r.rss), max(heap, r.heapInuse)
		}
		return
	}
	earlyRSS, earlyHeap := peak(readings[q : 2*q])
	lateRSS, lateHeap := peak(readings[3*q:])
	t.Logf("%v of load, %d spans sent; readings every 2 s:", duration, sentSpans.Load())
	for i, r := range readings {
		if i%max(1, len(readings)/12) == 0 || i == len(readings)-1 {
			t.Logf("  %6v spans %6.0f bytes %5.1f MiB series %5.0f evicted %7.0f rss %6.1f MiB heap %6.1f MiB",
				r.at, r.spans, r.bytes/(1<<20), r.series, r.evicted, r.rss/(1<<20), r.heapInuse/(1<<20))
		}
	}
	if lateHeap > earlyHeap*1.25+8<<20 {
		t.Errorf("heap in use grew with the stores full: %.1f MiB → %.1f MiB", earlyHeap/(1<<20), lateHeap/(1<<20))
	}
	if lateRSS > earlyRSS*1.25+8<<20 {
		t.Errorf("RSS grew with the stores full: %.1f MiB → %.1f MiB", earlyRSS/(1<<20), lateRSS/(1<<20))
	}
}

// startChurningProxy connects a proxy to the control plane with weft's own
// xDS client, and serves its /stats/prometheus on IP:15090 with 500 new
// request series at every scrape (a new source workload each time).
func startChurningProxy(t *testing.T, ctx context.Context, wg *sync.WaitGroup, b block, i int) {
	t.Helper()
	ip := b.ip(1, i)
	name := fmt.Sprintf("soak-%d", i)
	ln, err := net.Listen("tcp", ip+":15090")
	if err != nil {
		t.Fatal(err)
	}
	var round atomic.Int64
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		n := round.Add(1)
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		bw := bufio.NewWriter(w)
		for j := range 500 {
			fmt.Fprintf(bw, "istio_requests_total{reporter=\"destination\",source_workload=\"client-%d-%d\",source_workload_namespace=\"default\","+
				"destination_workload=%q,destination_workload_namespace=\"default\",destination_service_name=%q,response_code=\"200\","+
				"response_flags=\"-\",connection_security_policy=\"mutual_tls\"} %d\n", n, j, name, name, n*10)
		}
		bw.Flush()
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	md, _ := structpb.NewStruct(map[string]any{
		"NAMESPACE": "default", "WORKLOAD_NAME": name, "INSTANCE_IPS": ip,
		"LABELS": map[string]any{"app": name, "version": "v1"},
	})
	c, err := xdsclient.New(xdsclient.Options{
		Address: b.controlPlaneIP() + ":15010",
		Node:    &core.Node{Id: fmt.Sprintf("sidecar~%s~%s.default~default.svc.cluster.local", ip, name), Metadata: md},
		Handler: discard{}, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.Run(ctx)
	}()
}

// discard accepts every xDS update.
type discard struct{}

func (discard) Update(string, string, map[string]proto.Message) error { return nil }

// sendSpans posts OTLP/HTTP batches of 100 three-span traces every 50 ms
// until ctx ends, counting the spans the receiver accepted.
func sendSpans(ctx context.Context, url string, sent *atomic.Int64) {
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil}}
	str := func(k, v string) *commonv1.KeyValue {
		return &commonv1.KeyValue{Key: k, Value: &commonv1.AnyValue{Value: &commonv1.AnyValue_StringValue{StringValue: v}}}
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		now := uint64(time.Now().UnixNano())
		var rss []*tracev1.ResourceSpans
		for _, svc := range []string{"productpage", "reviews", "ratings"} {
			ss := &tracev1.ScopeSpans{}
			for range 100 {
				tid, sid := make([]byte, 16), make([]byte, 8)
				rand.Read(tid)
				rand.Read(sid)
				ss.Spans = append(ss.Spans, &tracev1.Span{TraceId: tid, SpanId: sid, Name: svc + ".default.svc.cluster.local:9080/*",
					Kind: tracev1.Span_SPAN_KIND_SERVER, StartTimeUnixNano: now - 3e6, EndTimeUnixNano: now,
					Attributes: []*commonv1.KeyValue{str("http.method", "GET"), str("http.url", "http://"+svc+":9080/"+svc+"/0"),
						str("http.status_code", "200"), str("upstream_cluster", "inbound|9080||"), str("node_id", "sidecar~127.0.0.1~"+svc)}})
			}
			rss = append(rss, &tracev1.ResourceSpans{
				Resource:   &resourcev1.Resource{Attributes: []*commonv1.KeyValue{str("service.name", svc+".default")}},
				ScopeSpans: []*tracev1.ScopeSpans{ss}})
		}
		body, _ := proto.Marshal(&collectortrace.ExportTraceServiceRequest{ResourceSpans: rss})
		req, _ := http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/x-protobuf")
		resp, err := client.Do(req)
		if err != nil {
			continue
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			sent.Add(300)
		}
	}
}

// scrapeGauges reads the unlabelled samples of a Prometheus text page.
func scrapeGauges(url string) (map[string]float64, error) {
	resp, err := (&http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil}}).Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' || strings.ContainsRune(line, '{') {
			continue
		}
		name, val, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		if v, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
			out[name] = v
		}
	}
	return out, sc.Err()
}
