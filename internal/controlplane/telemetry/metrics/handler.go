package metrics

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// API paths served by NewHandler and the service discovery handler.
const (
	EdgesPath   = "/api/v1/metrics/edges"
	NodesPath   = "/api/v1/metrics/nodes"
	SeriesPath  = "/api/v1/metrics/series"
	TargetsPath = "/api/v1/prometheus/targets"
)

// Query bounds.
const (
	defaultWindow = 5 * time.Minute
	minWindow     = 10 * time.Second
	maxWindow     = 24 * time.Hour
)

// EdgesResponse is the answer of GET /api/v1/metrics/edges.
type EdgesResponse struct {
	Window string `json:"window"`
	Edges  []Edge `json:"edges"`
}

// NodesResponse is the answer of GET /api/v1/metrics/nodes.
type NodesResponse struct {
	Window string `json:"window"`
	Nodes  []Node `json:"nodes"`
}

// NewHandler serves the query API over q:
//
//	GET /api/v1/metrics/edges?window=5m&namespace=NS
//	GET /api/v1/metrics/nodes?window=5m&namespace=NS
//	GET /api/v1/metrics/series?workload=W|service=S&namespace=NS&direction=inbound|outbound
//	    &metric=request_rate|request_duration|request_size|response_size|tcp_sent|tcp_received
//	    &window=15m&step=15s
//
// A bad parameter is a 400 {"error"} naming it; a failing Source (an
// unreachable Prometheus) a 502.
func NewHandler(q *Querier) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+EdgesPath, func(w http.ResponseWriter, r *http.Request) {
		v := r.URL.Query()
		window, err := parseWindow(v)
		if err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		edges, err := q.Edges(r.Context(), window, Filter{Namespace: v.Get("namespace")})
		if err != nil {
			writeError(w, http.StatusBadGateway, err)
			return
		}
		writeJSON(w, http.StatusOK, EdgesResponse{Window: window.String(), Edges: edges})
	})
	mux.HandleFunc("GET "+NodesPath, func(w http.ResponseWriter, r *http.Request) {
		v := r.URL.Query()
		window, err := parseWindow(v)
		if err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		nodes, err := q.Nodes(r.Context(), window, Filter{Namespace: v.Get("namespace")})
		if err != nil {
			writeError(w, http.StatusBadGateway, err)
			return
		}
		writeJSON(w, http.StatusOK, NodesResponse{Window: window.String(), Nodes: nodes})
	})
	mux.HandleFunc("GET "+SeriesPath, func(w http.ResponseWriter, r *http.Request) {
		sq, err := parseSeriesQuery(r.URL.Query())
		if err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		chart, err := q.Series(r.Context(), sq)
		switch {
		case errors.Is(err, ErrBadQuery):
			writeError(w, http.StatusBadRequest, err)
		case err != nil:
			writeError(w, http.StatusBadGateway, err)
		default:
			writeJSON(w, http.StatusOK, chart)
		}
	})
	return mux
}

// parseWindow reads window= (a duration such as 1m, 5m, 15m, 1h).
func parseWindow(v url.Values) (time.Duration, error) {
	s := v.Get("window")
	if s == "" {
		return defaultWindow, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < minWindow || d > maxWindow {
		return 0, fmt.Errorf("window %q: want a duration from %s to %s, such as 1m, 5m, 15m or 1h", s, minWindow, maxWindow)
	}
	return d, nil
}

// parseSeriesQuery reads a chart query; step defaults to window/60 (at least 5 s).
func parseSeriesQuery(v url.Values) (SeriesQuery, error) {
	window, err := parseWindow(v)
	if err != nil {
		return SeriesQuery{}, err
	}
	sq := SeriesQuery{Workload: v.Get("workload"), Service: v.Get("service"), Namespace: v.Get("namespace"),
		Direction: v.Get("direction"), Metric: v.Get("metric"), Window: window}
	if sq.Metric == "" {
		sq.Metric = MetricRequestRate
	}
	if s := v.Get("step"); s != "" {
		sq.Step, err = time.ParseDuration(s)
		if err != nil || sq.Step < time.Second {
			return sq, fmt.Errorf("step %q: want a duration of at least 1s, such as 15s", s)
		}
	} else {
		sq.Step = max((window / 60).Truncate(time.Second), DefaultScrapeInterval)
	}
	if _, err := sq.matchers(); err != nil {
		return sq, err
	}
	return sq, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, map[string]string{"error": err.Error()})
}
