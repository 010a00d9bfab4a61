package traces

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// defaultLimit is how many traces a search returns when limit is not given.
const defaultLimit = 20

// SearchResponse is the answer of GET /api/v1/traces: Jaeger's envelope
// with the traces in data, plus a summary per trace.
type SearchResponse struct {
	Data      []JaegerTrace  `json:"data"`
	Summaries []TraceSummary `json:"summaries"`
	Total     int            `json:"total"`
	Limit     int            `json:"limit"`
	Offset    int            `json:"offset"`
	Errors    []any          `json:"errors"`
}

// NewHandler serves the store's query API:
//
//	GET /api/v1/traces?service=&operation=&tags={json}&minDuration=&maxDuration=&start=&end=&lookback=&limit=
//	GET /api/v1/traces/{traceID}
//	GET /api/v1/services
//	GET /api/v1/services/{service}/operations
func NewHandler(store *Store) http.Handler {
	return newHandler(store, time.Now)
}

func newHandler(store *Store, now func() time.Time) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/traces", func(w http.ResponseWriter, r *http.Request) {
		q, err := parseQuery(r.URL.Query(), now())
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		found := store.Find(q)
		resp := SearchResponse{Data: []JaegerTrace{}, Summaries: found, Total: len(found), Limit: q.Limit}
		if resp.Summaries == nil {
			resp.Summaries = []TraceSummary{}
		}
		for _, s := range found {
			if t, ok := store.Get(s.TraceID); ok {
				resp.Data = append(resp.Data, t.Jaeger())
			}
		}
		writeJSON(w, http.StatusOK, resp)
	})
	mux.HandleFunc("GET /api/v1/traces/{traceID}", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("traceID")
		if !isHex(id) || len(id) > 32 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("traceID %q: want up to 32 hex digits", id))
			return
		}
		t, ok := store.Get(id)
		if !ok {
			writeError(w, http.StatusNotFound, fmt.Sprintf("trace %s not found (not received, or evicted)", id))
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"data": []JaegerTrace{t.Jaeger()}, "total": 1, "limit": 0, "offset": 0, "errors": nil})
	})
	mux.HandleFunc("GET /api/v1/services", func(w http.ResponseWriter, r *http.Request) {
		s := store.Services()
		writeJSON(w, http.StatusOK, map[string]any{"data": s, "total": len(s), "limit": 0, "offset": 0, "errors": nil})
	})
	mux.HandleFunc("GET /api/v1/services/{service}/operations", func(w http.ResponseWriter, r *http.Request) {
		ops := store.Operations(r.PathValue("service"))
		writeJSON(w, http.StatusOK, map[string]any{"data": ops, "total": len(ops), "limit": 0, "offset": 0, "errors": nil})
	})
	return mux
}

// Mount returns a handler serving the store's query API and passing every
// other request to next.
func Mount(next http.Handler, store *Store) http.Handler {
	th := NewHandler(store)
	mux := http.NewServeMux()
	mux.Handle("/", next)
	for _, p := range []string{"/api/v1/traces", "/api/v1/traces/", "/api/v1/services", "/api/v1/services/"} {
		mux.Handle(p, th)
	}
	return mux
}

// parseQuery reads a search's parameters; errors name the parameter.
func parseQuery(v url.Values, now time.Time) (Query, error) {
	q := Query{Service: v.Get("service"), Operation: v.Get("operation"), Limit: defaultLimit}
	if s := v.Get("tags"); s != "" {
		var tags map[string]any
		if err := json.Unmarshal([]byte(s), &tags); err != nil {
			return q, fmt.Errorf(`tags: want a JSON object such as {"http.status_code":"500","error":"true"}: %v`, err)
		}
		q.Tags = map[string]string{}
		for k, val := range tags {
			switch x := val.(type) {
			case string:
				q.Tags[k] = x
			case bool, float64:
				q.Tags[k] = fmt.Sprint(x)
			default:
				return q, fmt.Errorf("tags: value of %q must be a string, number or bool", k)
			}
		}
	}
	// Jaeger's UI also sends tag=key:value, repeated.
	for _, kv := range v["tag"] {
		k, val, ok := strings.Cut(kv, ":")
		if !ok {
			return q, fmt.Errorf("tag %q: want key:value", kv)
		}
		if q.Tags == nil {
			q.Tags = map[string]string{}
		}
		q.Tags[k] = val
	}
	var err error
	if q.MinDuration, err = durationParam(v, "minDuration"); err != nil {
		return q, err
	}
	if q.MaxDuration, err = durationParam(v, "maxDuration"); err != nil {
		return q, err
	}
	if q.Start, err = microsParam(v, "start"); err != nil {
		return q, err
	}
	if q.End, err = microsParam(v, "end"); err != nil {
		return q, err
	}
	if s := v.Get("lookback"); s != "" && s != "custom" && q.Start.IsZero() {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return q, fmt.Errorf("lookback %q: want a positive duration such as 1h", s)
		}
		end := q.End
		if end.IsZero() {
			end = now
		}
		q.Start = end.Add(-d)
	}
	if !q.Start.IsZero() && !q.End.IsZero() && q.End.Before(q.Start) {
		return q, fmt.Errorf("end is before start")
	}
	if q.MaxDuration > 0 && q.MaxDuration < q.MinDuration {
		return q, fmt.Errorf("maxDuration %s is less than minDuration %s", q.MaxDuration, q.MinDuration)
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return q, fmt.Errorf("limit %q: want a non-negative integer (0: all)", s)
		}
		q.Limit = n
	}
	return q, nil
}

func durationParam(v url.Values, name string) (time.Duration, error) {
	s := v.Get(name)
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%s %q: want a duration such as 100ms or 1.5s", name, s)
	}
	return d, nil
}

func microsParam(v url.Values, name string) (time.Time, error) {
	s := v.Get(name)
	if s == "" {
		return time.Time{}, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return time.Time{}, fmt.Errorf("%s %q: want Unix time in microseconds", name, s)
	}
	return time.UnixMicro(n), nil
}

func isHex(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}
