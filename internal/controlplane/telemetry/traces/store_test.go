package traces

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var t0 = time.Unix(1700000000, 0)

func tid(n int) string { return fmt.Sprintf("%032x", n) }
func sid(n int) string { return fmt.Sprintf("%016x", n) }

var (
	productpage = &Process{ServiceName: "productpage.default"}
	reviews     = &Process{ServiceName: "reviews.default", Tags: []Tag{{Key: "service.version", Type: "string", Value: "v2"}}}
)

// bookinfoTrace is productpage (server, root) → reviews (client then server).
func bookinfoTrace(n int, start time.Time, status int64) []*Span {
	return []*Span{
		{TraceID: tid(n), SpanID: sid(1), Name: "productpage.default.svc.cluster.local:9080/*", Kind: "server",
			Start: start, Duration: 50 * time.Millisecond, Process: productpage,
			Tags: []Tag{{Key: "http.status_code", Type: "int64", Value: int64(200)}}},
		{TraceID: tid(n), SpanID: sid(2), ParentSpanID: sid(1), Name: "reviews.default.svc.cluster.local:9080/*", Kind: "client",
			Start: start.Add(time.Millisecond), Duration: 40 * time.Millisecond, Process: productpage,
			Tags: []Tag{{Key: "http.status_code", Type: "int64", Value: status}}},
		{TraceID: tid(n), SpanID: sid(3), ParentSpanID: sid(2), Name: "reviews.default.svc.cluster.local:9080/*", Kind: "server",
			Start: start.Add(2 * time.Millisecond), Duration: 30 * time.Millisecond, Process: reviews, Error: status >= 500,
			Tags: []Tag{{Key: "http.status_code", Type: "int64", Value: status}, {Key: "error", Type: "bool", Value: status >= 500}}},
	}
}

func ids(s []TraceSummary) []string {
	out := []string{}
	for _, x := range s {
		out = append(out, x.TraceID)
	}
	return out
}

func TestFind(t *testing.T) {
	st := NewStore(StoreOptions{})
	st.Add(bookinfoTrace(1, t0, 200))
	st.Add(bookinfoTrace(2, t0.Add(time.Second), 503))
	st.Add([]*Span{{TraceID: tid(3), SpanID: sid(9), Name: "slow", Start: t0.Add(2 * time.Second), Duration: 2 * time.Second, Process: reviews}})

	tests := []struct {
		name string
		q    Query
		want []string
	}{
		{"all, newest first", Query{}, []string{tid(3), tid(2), tid(1)}},
		{"limit", Query{Limit: 2}, []string{tid(3), tid(2)}},
		{"service", Query{Service: "productpage.default"}, []string{tid(2), tid(1)}},
		{"unknown service", Query{Service: "nope"}, []string{}},
		{"operation", Query{Service: "reviews.default", Operation: "slow"}, []string{tid(3)}},
		{"tag int", Query{Tags: map[string]string{"http.status_code": "503"}}, []string{tid(2)}},
		{"tag bool", Query{Tags: map[string]string{"error": "true"}}, []string{tid(2)}},
		{"process tag", Query{Tags: map[string]string{"service.version": "v2"}}, []string{tid(3), tid(2), tid(1)}},
		{"tags on one span", Query{Service: "productpage.default", Tags: map[string]string{"error": "true"}}, []string{}},
		{"min duration", Query{MinDuration: time.Second}, []string{tid(3)}},
		{"max duration", Query{MaxDuration: 35 * time.Millisecond}, []string{tid(2), tid(1)}},
		{"start", Query{Start: t0.Add(500 * time.Millisecond)}, []string{tid(3), tid(2)}},
		{"end", Query{End: t0.Add(500 * time.Millisecond)}, []string{tid(1)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, ids(st.Find(tt.q))); diff != "" {
				t.Errorf("Find(%+v) (-want +got):\n%s", tt.q, diff)
			}
		})
	}

	got := st.Find(Query{Tags: map[string]string{"error": "true"}})[0]
	want := TraceSummary{TraceID: tid(2), RootService: "productpage.default", RootOperation: "productpage.default.svc.cluster.local:9080/*",
		Start: t0.Add(time.Second), Duration: 50 * time.Millisecond, Spans: 3, Errors: 1, Services: []string{"productpage.default", "reviews.default"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("summary (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"productpage.default", "reviews.default"}, st.Services()); diff != "" {
		t.Errorf("Services (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"reviews.default.svc.cluster.local:9080/*", "slow"}, st.Operations("reviews.default")); diff != "" {
		t.Errorf("Operations (-want +got):\n%s", diff)
	}
	tr, ok := st.Get(tid(2))
	if !ok || len(tr.Spans) != 3 || tr.Spans[0].SpanID != sid(1) {
		t.Fatalf("Get = %+v, %v", tr, ok)
	}
	if _, ok := st.Get("2"); !ok {
		t.Error("Get of a short (64-bit style) id did not pad it")
	}
}

func TestBoundsEvictOldestTraces(t *testing.T) {
	st := NewStore(StoreOptions{MaxSpans: 10})
	for i := 1; i <= 4; i++ {
		st.Add(bookinfoTrace(i, t0.Add(time.Duration(i)*time.Second), 200))
	}
	// 12 spans > 10: trace 1 (the oldest) goes whole.
	if spans, traces, _ := st.Stats(); spans != 9 || traces != 3 {
		t.Errorf("Stats = %d spans, %d traces; want 9, 3", spans, traces)
	}
	if _, ok := st.Get(tid(1)); ok {
		t.Error("oldest trace kept")
	}
	// A late span of trace 2 does not make it young again.
	st.Add([]*Span{{TraceID: tid(2), SpanID: sid(7), Name: "late", Start: t0, Process: reviews}})
	st.Add(bookinfoTrace(5, t0, 200))
	if _, ok := st.Get(tid(2)); ok {
		t.Error("trace 2 kept though it is the oldest")
	}
	if got := st.Operations("reviews.default"); len(got) != 1 {
		t.Errorf("operations of evicted spans remain: %v", got)
	}
}

// TestFlood adds spans from several goroutines and checks the bounds hold
// throughout and that the byte estimate matches what is held.
func TestFlood(t *testing.T) {
	for _, o := range []StoreOptions{{MaxSpans: 500, MaxBytes: 1 << 30}, {MaxSpans: 1 << 30, MaxBytes: 64 << 10}} {
		t.Run(fmt.Sprintf("%d spans %d bytes", o.MaxSpans, o.MaxBytes), func(t *testing.T) {
			st := NewStore(o)
			var wg sync.WaitGroup
			for g := range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range 500 {
						st.Add(bookinfoTrace(g*1000+i+1, t0, 200))
						spans, _, bytes := st.Stats()
						if spans > o.MaxSpans || bytes > o.MaxBytes {
							t.Errorf("bounds broken: %d spans, %d bytes", spans, bytes)
							return
						}
						st.Find(Query{Limit: 5, Tags: map[string]string{"error": "true"}})
					}
				}()
			}
			wg.Wait()
			spans, traces, bytes := st.Stats()
			if spans == 0 || spans%3 != 0 || traces != spans/3 {
				t.Errorf("%d spans in %d traces: not whole traces", spans, traces)
			}
			var sum int64
			for _, s := range st.Find(Query{}) {
				tr, _ := st.Get(s.TraceID)
				for _, sp := range tr.Spans {
					sum += spanBytes(sp)
				}
			}
			if sum != bytes || bytes > o.MaxBytes {
				t.Errorf("bytes = %d, spans hold %d, max %d", bytes, sum, o.MaxBytes)
			}
		})
	}
}
