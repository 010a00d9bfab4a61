package traces

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

func get(t *testing.T, h http.Handler, target string) (int, map[string]any) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", target, nil))
	var body map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("GET %s: %v: %s", target, err, rec.Body)
	}
	return rec.Code, body
}

func TestHandler(t *testing.T) {
	st := NewStore(StoreOptions{})
	st.Add(bookinfoTrace(1, t0, 200))
	st.Add(bookinfoTrace(2, t0.Add(time.Second), 503))
	h := newHandler(st, func() time.Time { return t0.Add(10 * time.Minute) })
	tags := url.QueryEscape(`{"http.status_code":"503","error":true}`)

	code, body := get(t, h, "/api/v1/traces?service=reviews.default&tags="+tags+"&minDuration=10ms&lookback=1h&limit=5")
	if code != 200 || body["total"].(float64) != 1 {
		t.Fatalf("search: %d %v", code, body)
	}
	tr := body["data"].([]any)[0].(map[string]any)
	if tr["traceID"] != tid(2) {
		t.Errorf("traceID %v", tr["traceID"])
	}
	spans := tr["spans"].([]any)
	child := spans[1].(map[string]any)
	refs := child["references"].([]any)
	if child["parentSpanID"] != sid(1) || refs[0].(map[string]any)["spanID"] != sid(1) || refs[0].(map[string]any)["refType"] != "CHILD_OF" {
		t.Errorf("child span %v", child)
	}
	if child["startTime"].(float64) != float64(t0.Add(time.Second+time.Millisecond).UnixMicro()) || child["duration"].(float64) != 40000 {
		t.Errorf("times %v %v", child["startTime"], child["duration"])
	}
	procs := tr["processes"].(map[string]any)
	if p := procs[child["processID"].(string)].(map[string]any); p["serviceName"] != "productpage.default" {
		t.Errorf("process %v", p)
	}
	if s := body["summaries"].([]any)[0].(map[string]any); s["rootService"] != "productpage.default" || s["spans"].(float64) != 3 {
		t.Errorf("summary %v", s)
	}

	// lookback is relative to now: 1m before now excludes both traces.
	if _, body := get(t, h, "/api/v1/traces?lookback=1m"); body["total"].(float64) != 0 {
		t.Errorf("lookback=1m found %v", body["total"])
	}
	end := strconv.FormatInt(t0.Add(500*time.Millisecond).UnixMicro(), 10)
	if _, body := get(t, h, "/api/v1/traces?start=0&end="+end); body["total"].(float64) != 1 {
		t.Errorf("start/end found %v", body["total"])
	}

	code, body = get(t, h, "/api/v1/traces/"+tid(1))
	if code != 200 || len(body["data"].([]any)[0].(map[string]any)["spans"].([]any)) != 3 {
		t.Errorf("get trace: %d %v", code, body)
	}
	if code, _ := get(t, h, "/api/v1/traces/"+tid(9)); code != 404 {
		t.Errorf("missing trace: %d", code)
	}
	if _, body := get(t, h, "/api/v1/services"); len(body["data"].([]any)) != 2 {
		t.Errorf("services %v", body)
	}
	if _, body := get(t, h, "/api/v1/services/reviews.default/operations"); len(body["data"].([]any)) != 1 {
		t.Errorf("operations %v", body)
	}
}

func TestHandlerBadParameters(t *testing.T) {
	h := NewHandler(NewStore(StoreOptions{}))
	for param, target := range map[string]string{
		"tags":        "/api/v1/traces?tags=" + url.QueryEscape("{not json"),
		"minDuration": "/api/v1/traces?minDuration=fast",
		"maxDuration": "/api/v1/traces?maxDuration=-1s",
		"start":       "/api/v1/traces?start=yesterday",
		"end":         "/api/v1/traces?end=1.5",
		"lookback":    "/api/v1/traces?lookback=forever",
		"limit":       "/api/v1/traces?limit=-3",
		"tag":         "/api/v1/traces?tag=novalue",
		"traceID":     "/api/v1/traces/not-hex",
	} {
		code, body := get(t, h, target)
		msg, _ := body["error"].(string)
		if code != 400 || !strings.HasPrefix(msg, param) {
			t.Errorf("%s: %d %q, want 400 naming %s", target, code, msg, param)
		}
	}
}

func TestMount(t *testing.T) {
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"next":true}`)) })
	h := Mount(next, NewStore(StoreOptions{}))
	if _, body := get(t, h, "/api/v1/config?kind=vs"); body["next"] != true {
		t.Error("other paths do not reach next")
	}
	if _, body := get(t, h, "/api/v1/services"); body["data"] == nil {
		t.Error("services not served")
	}
}
