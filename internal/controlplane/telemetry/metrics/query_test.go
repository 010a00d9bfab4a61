package metrics

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// t0 is when the second scrape of the fixtures happens; the first is 5 s before.
var t0 = time.Unix(1_700_000_000, 0)

// scrapedStore scrapes testdata/round1.prom then round2.prom from an
// httptest server, 5 s apart, ending at t0.
func scrapedStore(t *testing.T) *Store {
	t.Helper()
	var round atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != StatsPath {
			http.NotFound(w, r)
			return
		}
		b, err := os.ReadFile(fmt.Sprintf("testdata/round%d.prom", round.Load()))
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.Write(b)
	}))
	t.Cleanup(srv.Close)
	st := NewStore(StoreOptions{})
	sc := NewScraper(ScraperOptions{Store: st, Targets: func() []Target {
		return []Target{{Address: strings.TrimPrefix(srv.URL, "http://")}}
	}})
	for i, at := range []time.Time{t0.Add(-5 * time.Second), t0} {
		round.Store(int32(i + 1))
		sc.now = func() time.Time { return at }
		sc.ScrapeOnce(context.Background())
	}
	if n, _ := st.Stats(); n == 0 {
		t.Fatal("nothing scraped")
	}
	return st
}

func ptr(v float64) *float64 { return &v }

// wantEdges are the fixtures' edges over a 10 s window ending at t0: two
// samples 5 s apart, extrapolated to the window's start, so rate = increase/5.
func wantEdges() []Edge {
	pp := Peer{Namespace: "default", Workload: "productpage-v1-1", App: "productpage", Version: "v1"}
	rv2 := Peer{Namespace: "default", Workload: "reviews-v2-1", App: "reviews", Version: "v2"}
	return []Edge{
		{ // only productpage's sidecar saw it (no destination sidecar)
			Source: pp,
			Destination: Peer{Namespace: "unknown", Workload: "unknown", App: "unknown", Version: "unknown",
				Service: "httpbin.org", ServiceName: "httpbin.org", ServiceNamespace: "unknown"},
			Reporter: ReporterSource,
			Traffic:  Traffic{RequestRate: 2},
		},
		{ // 50+5+10 requests in 5 s; the source's own count (500) is not used
			Source: pp,
			Destination: Peer{Namespace: "default", Workload: "reviews-v2-1", App: "reviews", Version: "v2",
				Service: "reviews.default.svc.cluster.local", ServiceName: "reviews", ServiceNamespace: "default"},
			Reporter: ReporterDestination,
			Traffic: Traffic{RequestRate: 13, ErrorRate4xx: 2, ErrorRate5xx: 1, MTLSShare: 11.0 / 13,
				LatencyP50: ptr(3), LatencyP95: ptr(9), LatencyP99: ptr(9.8)},
		},
		{
			Source: rv2,
			Destination: Peer{Namespace: "default", Workload: "ratings-v1-1", App: "ratings", Version: "v1",
				Service: "ratings.default.svc.cluster.local", ServiceName: "ratings", ServiceNamespace: "default"},
			Reporter: ReporterDestination,
			Traffic:  Traffic{MTLSShare: 1, TCPSentBytesRate: 200, TCPReceivedBytesRate: 100},
		},
	}
}

var approx = cmp.Comparer(func(a, b float64) bool { return a == b || (a-b < 1e-9 && b-a < 1e-9) })

func newTestQuerier(src Source) *Querier {
	q := NewQuerier(src)
	q.now = func() time.Time { return t0 }
	return q
}

func TestEdgesFromScrapes(t *testing.T) {
	q := newTestQuerier(scrapedStore(t))
	got, err := q.Edges(context.Background(), 10*time.Second, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantEdges(), got, approx); diff != "" {
		t.Errorf("Edges (-want +got):\n%s", diff)
	}
	got, _ = q.Edges(context.Background(), 10*time.Second, Filter{Namespace: "other"})
	if len(got) != 0 {
		t.Errorf("namespace other: got %d edges, want none", len(got))
	}
}

func TestNodes(t *testing.T) {
	q := newTestQuerier(scrapedStore(t))
	nodes, err := q.Nodes(context.Background(), 10*time.Second, Filter{Namespace: "default"})
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]Node{}
	for _, n := range nodes {
		byName[n.Kind+"/"+n.Name] = n
	}
	if n := byName["workload/productpage-v1-1"]; n.Outbound.RequestRate != 15 || n.Inbound.RequestRate != 0 {
		t.Errorf("productpage: outbound %v inbound %v req/s, want 15 and 0", n.Outbound.RequestRate, n.Inbound.RequestRate)
	}
	if n := byName["workload/reviews-v2-1"]; n.Inbound.RequestRate != 13 || n.Outbound.TCPSentBytesRate != 200 || n.Inbound.LatencyP50 == nil {
		t.Errorf("reviews-v2: %+v", n)
	}
	if n := byName["service/reviews"]; n.Inbound.ErrorRate5xx != 1 || n.Service != "reviews.default.svc.cluster.local" {
		t.Errorf("service reviews: %+v", n)
	}
	if _, ok := byName["service/httpbin.org"]; ok {
		t.Error("namespace filter kept httpbin.org (namespace unknown)")
	}
}

func TestSeries(t *testing.T) {
	q := newTestQuerier(scrapedStore(t))
	// Each point is rate(...[1m]): two samples 5 s apart, 55 s after the
	// range's start (more than 1.1 intervals): extrapolated by 2.5 s, so
	// rate = increase*7.5/5/60 = increase/40. The point at t0-5s has one
	// sample only and is absent.
	at := float64(t0.Unix())
	tests := []struct {
		sq   SeriesQuery
		want []Line
	}{
		{SeriesQuery{Workload: "reviews-v2-1", Metric: MetricRequestRate}, []Line{
			{"total", [][2]float64{{at, 65.0 / 40}}}, {"4xx", [][2]float64{{at, 10.0 / 40}}}, {"5xx", [][2]float64{{at, 5.0 / 40}}}}},
		{SeriesQuery{Service: "reviews", Namespace: "default", Metric: MetricRequestDuration}, []Line{
			{"p50", [][2]float64{{at, 3}}}, {"p95", [][2]float64{{at, 9}}}, {"p99", [][2]float64{{at, 9.8}}}}},
		{SeriesQuery{Workload: "reviews-v2-1", Metric: MetricRequestSize}, []Line{{"avg", [][2]float64{{at, 100}}}}},
		{SeriesQuery{Workload: "reviews-v2-1", Direction: Outbound, Metric: MetricTCPSent}, []Line{{"total", [][2]float64{}}}},
		{SeriesQuery{Workload: "ratings-v1-1", Metric: MetricTCPSent}, []Line{{"total", [][2]float64{{at, 1000.0 / 40}}}}},
		{SeriesQuery{Workload: "productpage-v1-1", Direction: Outbound, Metric: MetricRequestRate}, []Line{
			// 500→1000 was at 0 5 s before its first sample: extrapolated
			// by 5 s, 500*10/5/60; plus httpbin's 10/40.
			{"total", [][2]float64{{at, 500.0*10/5/60 + 10.0/40}}}, {"4xx", [][2]float64{}}, {"5xx", [][2]float64{}}}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s%s/%s/%s", tt.sq.Workload, tt.sq.Service, tt.sq.Direction, tt.sq.Metric), func(t *testing.T) {
			tt.sq.Window, tt.sq.Step = 10*time.Second, 5*time.Second
			c, err := q.Series(context.Background(), tt.sq)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, c.Lines, approx); diff != "" {
				t.Errorf("lines (-want +got):\n%s", diff)
			}
		})
	}
}

func TestStoreBounds(t *testing.T) {
	st := NewStore(StoreOptions{MaxSeries: 2, Retention: time.Minute})
	p := func(name string, v float64) Point { return Point{Name: name, Labels: Labels{"a": "b"}, Value: v} }
	st.Append(t0, []Point{p("istio_a", 1), p("istio_b", 1)})
	st.Append(t0.Add(time.Second), []Point{p("istio_a", 2), p("istio_c", 1)}) // evicts b, the least recently updated
	if n, ev := st.Stats(); n != 2 || ev != 1 {
		t.Fatalf("series %d evicted %d, want 2 and 1", n, ev)
	}
	st.Append(t0.Add(time.Second), []Point{p("istio_d", 1)}) // every series is fresh: d is refused
	if _, ok := st.byName["istio_d"]; ok {
		t.Fatal("d was stored over the limit")
	}
	st.Append(t0.Add(2*time.Minute), []Point{p("istio_e", 1)}) // a and c are past the retention
	if n, _ := st.Stats(); n != 1 {
		t.Fatalf("after the retention: %d series, want 1", n)
	}
}

func TestParseKeepsIstioOnly(t *testing.T) {
	f, err := os.Open("testdata/round1.prom")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	points, err := Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]int{}
	for _, p := range points {
		names[p.Name]++
	}
	want := map[string]int{
		RequestsTotal: 5, RequestDuration + "_bucket": 20, RequestDuration + "_sum": 1, RequestDuration + "_count": 1,
		RequestBytes + "_sum": 1, RequestBytes + "_count": 1, TCPSentBytes: 1, TCPReceivedBytes: 1,
	}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("parsed series per name (-want +got):\n%s", diff)
	}
	if _, err := Parse(strings.NewReader("istio_x{a=\"b\" 1\n")); err == nil {
		t.Error("malformed text parsed without error")
	}
}

// promQL matches what RateQuery.PromQL writes.
var promQL = regexp.MustCompile(`^sum\(rate\(([a-z_]+)\{(.*)\}\[(\d+)s\]\)\) by \((.*)\)$`)
var matcher = regexp.MustCompile(`([a-z_]+)=("(?:[^"\\]|\\.)*")`)

// fakePrometheus answers /api/v1/query and /api/v1/query_range by
// evaluating the PromQL that Prometheus.Rates sends on a Store.
func fakePrometheus(t *testing.T, st *Store) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := r.URL.Query()
		m := promQL.FindStringSubmatch(v.Get("query"))
		if m == nil {
			w.WriteHeader(400)
			fmt.Fprintf(w, `{"status":"error","errorType":"bad_data","error":"unexpected query %q"}`, v.Get("query"))
			return
		}
		rng, _ := strconv.Atoi(m[3])
		q := RateQuery{Metric: m[1], Matchers: map[string]string{}, Range: time.Duration(rng) * time.Second}
		for _, mm := range matcher.FindAllStringSubmatch(m[2], -1) {
			q.Matchers[mm[1]], _ = strconv.Unquote(mm[2])
		}
		if m[4] != "" {
			q.By = strings.Split(m[4], ",")
		}
		sec := func(s string) time.Time { f, _ := strconv.ParseFloat(s, 64); return time.UnixMilli(int64(f * 1000)) }
		kind := "vector"
		if r.URL.Path == "/api/v1/query_range" {
			kind = "matrix"
			q.Start, q.End = sec(v.Get("start")), sec(v.Get("end"))
			step, _ := strconv.ParseFloat(v.Get("step"), 64)
			q.Step = time.Duration(step * float64(time.Second))
		} else {
			q.End = sec(v.Get("time"))
		}
		vecs, _ := st.Rates(r.Context(), q)
		type res struct {
			Metric map[string]string `json:"metric"`
			Value  []any             `json:"value,omitempty"`
			Values [][]any           `json:"values,omitempty"`
		}
		out := []res{}
		for _, vec := range vecs {
			rr := res{Metric: map[string]string{}}
			for k, val := range vec.Labels {
				if val != "" { // Prometheus drops empty labels
					rr.Metric[k] = val
				}
			}
			for i, tm := range vec.Times {
				if vec.Present[i] {
					pair := []any{float64(tm.UnixMilli()) / 1000, strconv.FormatFloat(vec.Values[i], 'g', -1, 64)}
					if kind == "vector" {
						rr.Value = pair
					} else {
						rr.Values = append(rr.Values, pair)
					}
				}
			}
			out = append(out, rr)
		}
		json.NewEncoder(w).Encode(map[string]any{"status": "success", "data": map[string]any{"resultType": kind, "result": out}})
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestPrometheusSourceGivesSameJSON checks that the two Sources give the
// same answers: the queries Prometheus gets are the ones the store answers.
func TestPrometheusSourceGivesSameJSON(t *testing.T) {
	st := scrapedStore(t)
	srv := fakePrometheus(t, st)
	prom, err := NewPrometheus(srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	local, remote := httptest.NewServer(NewHandler(newTestQuerier(st))), httptest.NewServer(NewHandler(newTestQuerier(prom)))
	defer local.Close()
	defer remote.Close()
	for _, path := range []string{
		EdgesPath + "?window=10s",
		NodesPath + "?window=10s&namespace=default",
		SeriesPath + "?workload=reviews-v2-1&metric=request_rate&window=10s&step=5s",
		SeriesPath + "?service=reviews&namespace=default&metric=request_duration&window=1m&step=5s",
		SeriesPath + "?workload=reviews-v2-1&metric=response_size&window=10s&step=5s",
	} {
		a, b := getBody(t, local.URL+path), getBody(t, remote.URL+path)
		if a != b {
			t.Errorf("%s: store and Prometheus differ:\nstore:      %s\nprometheus: %s", path, a, b)
		}
	}
	if _, err := NewPrometheus("localhost:9090", nil); err == nil {
		t.Error("a URL without scheme was accepted")
	}
}

func getBody(t *testing.T, u string) string {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v any
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %v", u, resp.StatusCode, v)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func TestHandlerErrors(t *testing.T) {
	srv := httptest.NewServer(NewHandler(newTestQuerier(NewStore(StoreOptions{}))))
	defer srv.Close()
	tests := []struct{ query, want string }{
		{EdgesPath + "?window=5", "window"},
		{EdgesPath + "?window=1s", "window"},
		{NodesPath + "?window=48h", "window"},
		{SeriesPath + "?metric=request_rate", "exactly one of workload= and service="},
		{SeriesPath + "?workload=a&service=b", "exactly one"},
		{SeriesPath + "?workload=a&metric=cpu", `metric "cpu"`},
		{SeriesPath + "?workload=a&step=0s", "step"},
		{SeriesPath + "?workload=a&window=1h&step=1s", "points"},
		{SeriesPath + "?service=a&direction=outbound", "inbound traffic only"},
		{SeriesPath + "?workload=a&direction=sideways", "direction"},
	}
	for _, tt := range tests {
		resp, err := http.Get(srv.URL + tt.query)
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]string
		json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != 400 || !strings.Contains(body["error"], tt.want) {
			t.Errorf("%s: %d %q, want 400 mentioning %q", tt.query, resp.StatusCode, body["error"], tt.want)
		}
	}
	// An unreachable Prometheus is a 502.
	prom, _ := NewPrometheus("http://127.0.0.1:1", nil)
	bad := httptest.NewServer(NewHandler(NewQuerier(prom)))
	defer bad.Close()
	resp, err := http.Get(bad.URL + EdgesPath + "?" + url.Values{"window": {"1m"}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway {
		t.Errorf("unreachable Prometheus: HTTP %d, want 502", resp.StatusCode)
	}
}
