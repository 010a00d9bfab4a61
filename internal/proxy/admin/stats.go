package admin

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// prometheusContentType is the Prometheus text exposition format.
const prometheusContentType = "text/plain; version=0.0.4; charset=utf-8"

// statsPrometheus serves GET /stats/prometheus: Istio's standard metrics,
// then the proxy's own health (xDS connection, config versions, per-cluster
// upstream counters) under Envoy's names.
func (s *Server) statsPrometheus(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", prometheusContentType)
	_ = s.writeMetrics(w)
}

func (s *Server) writeMetrics(w io.Writer) error {
	if s.opts.Stats != nil {
		if err := s.opts.Stats.WritePrometheus(w); err != nil {
			return err
		}
	}
	bw := bufio.NewWriter(w)
	connected := 0
	if s.opts.Connected != nil && s.opts.Connected() {
		connected = 1
	}
	fmt.Fprintf(bw, "# HELP envoy_control_plane_connected_state Whether the proxy's xDS stream is up.\n# TYPE envoy_control_plane_connected_state gauge\nenvoy_control_plane_connected_state %d\n", connected)
	if s.opts.Config != nil {
		bw.WriteString("# HELP weft_xds_config_info The version of each xDS type the proxy runs (1 per type).\n# TYPE weft_xds_config_info gauge\n")
		for _, snap := range s.opts.Config.Snapshots() {
			typ := snap.TypeURL[strings.LastIndexByte(snap.TypeURL, '.')+1:]
			fmt.Fprintf(bw, "weft_xds_config_info{type=%q,version=%q} 1\n", typ, snap.Version)
		}
		bw.WriteString("# HELP weft_xds_config_rejected Whether the last response of each xDS type was rejected (NACK).\n# TYPE weft_xds_config_rejected gauge\n")
		for _, snap := range s.opts.Config.Snapshots() {
			typ := snap.TypeURL[strings.LastIndexByte(snap.TypeURL, '.')+1:]
			rejected := 0
			if snap.LastNACK != "" {
				rejected = 1
			}
			fmt.Fprintf(bw, "weft_xds_config_rejected{type=%q} %d\n", typ, rejected)
		}
	}
	if s.opts.Data != nil {
		cs := s.opts.Data.Clusters()
		type fam struct {
			name, typ, help string
			val             func(i int) int64
		}
		sum := func(i int, f func(e int, c int) int64) int64 {
			var n int64
			for e := range cs[i].Endpoints {
				n += f(i, e)
			}
			return n
		}
		fams := []fam{
			{"envoy_cluster_upstream_rq_total", "counter", "Requests sent to the cluster's endpoints.", func(i int) int64 {
				return sum(i, func(i, e int) int64 { return cs[i].Endpoints[e].TotalRequests })
			}},
			{"envoy_cluster_upstream_rq_active", "gauge", "Requests in flight to the cluster's endpoints.", func(i int) int64 {
				return sum(i, func(i, e int) int64 { return cs[i].Endpoints[e].ActiveRequests })
			}},
			{"envoy_cluster_upstream_rq_error", "counter", "Requests to the cluster that failed (connect failure, reset, timeout).", func(i int) int64 {
				return sum(i, func(i, e int) int64 { return cs[i].Endpoints[e].FailedRequests })
			}},
			{"envoy_cluster_upstream_rq_pending_overflow", "counter", "Requests refused by the cluster's circuit breakers (503 UO).", func(i int) int64 { return cs[i].Overflows }},
			{"envoy_cluster_upstream_rq_retry_overflow", "counter", "Retries not made because max_retries were in flight.", func(i int) int64 { return cs[i].RetryOverflows }},
			{"envoy_cluster_outlier_detection_ejections_total", "counter", "Outlier detection ejections of the cluster's endpoints.", func(i int) int64 {
				return sum(i, func(i, e int) int64 { return cs[i].Endpoints[e].Ejections })
			}},
			{"envoy_cluster_outlier_detection_ejections_active", "gauge", "Endpoints ejected now.", func(i int) int64 {
				return sum(i, func(i, e int) int64 {
					if cs[i].Endpoints[e].Healthy {
						return 0
					}
					return 1
				})
			}},
			{"envoy_cluster_membership_total", "gauge", "Endpoints of the cluster.", func(i int) int64 { return int64(len(cs[i].Endpoints)) }},
			{"envoy_cluster_membership_healthy", "gauge", "Healthy endpoints of the cluster.", func(i int) int64 {
				return sum(i, func(i, e int) int64 {
					if cs[i].Endpoints[e].Healthy {
						return 1
					}
					return 0
				})
			}},
		}
		for _, f := range fams {
			fmt.Fprintf(bw, "# HELP %s %s\n# TYPE %s %s\n", f.name, f.help, f.name, f.typ)
			for i := range cs {
				fmt.Fprintf(bw, "%s{cluster_name=%q} %d\n", f.name, cs[i].Name, f.val(i))
			}
		}
	}
	return bw.Flush()
}

// mergedMetrics serves :15020/stats/prometheus as Istio's agent does: the
// proxy's metrics followed by the app's own (AppMetricsURL), when set.
func (s *Server) mergedMetrics(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", prometheusContentType)
	_ = s.writeMetrics(w)
	if s.opts.AppMetricsURL == "" {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.opts.AppMetricsURL, nil)
	if err != nil {
		return
	}
	resp, err := s.appClient.Do(req)
	if err != nil {
		s.log.Debug("scraping the app's metrics", "url", s.opts.AppMetricsURL, "err", err)
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		s.log.Debug("scraping the app's metrics", "url", s.opts.AppMetricsURL, "status", resp.StatusCode)
		return
	}
	_, _ = io.Copy(w, io.LimitReader(resp.Body, 16<<20))
}

// appMetricsClient reaches the app directly, never through a proxy.
var appMetricsClient = &http.Client{Transport: &http.Transport{Proxy: nil}}

// logs serves GET /logs?tail=N[&follow=1]: the access log's recent JSON
// lines, then, when following, new ones as they come.
func (s *Server) logs(w http.ResponseWriter, r *http.Request) {
	if s.opts.AccessLog == nil {
		http.Error(w, "the access log is off on this proxy", http.StatusNotFound)
		return
	}
	tail := 100
	if v := r.URL.Query().Get("tail"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			http.Error(w, fmt.Sprintf("tail %q: want a number of lines", v), http.StatusBadRequest)
			return
		}
		tail = n
	}
	follow := r.URL.Query().Get("follow") == "1" || r.URL.Query().Get("follow") == "true"
	var lines <-chan []byte
	stop := func() {}
	if follow {
		lines, stop = s.opts.AccessLog.Follow() // before Tail, so no line falls between
	}
	defer stop()
	w.Header().Set("Content-Type", "application/x-ndjson")
	for _, l := range s.opts.AccessLog.Tail(tail) {
		_, _ = w.Write(l)
	}
	if !follow {
		return
	}
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	for {
		select {
		case <-r.Context().Done():
			return
		case l := <-lines:
			if _, err := w.Write(l); err != nil {
				return
			}
			_ = rc.Flush()
		}
	}
}
