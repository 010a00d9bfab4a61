package metrics

import (
	"errors"
	"net/http"

	"github.com/weft-mesh/weft/internal/controlplane/xdsserver"
)

// Labels of a scrape target, for Prometheus's http_sd.
const (
	LabelMetricsPath = "__metrics_path__"
	LabelNamespace   = "namespace"
	LabelPod         = "pod"
	LabelApp         = "app"
	LabelVersion     = "version"
	LabelProxyType   = "proxy_type"
)

// TargetsOf returns the scrape targets of the connected proxies: POD_IP:15090
// (the node's INSTANCE_IPS) with their namespace, pod (workload name), app,
// version and proxy type (sidecar or router). Proxies without an IP are
// skipped, and so are proxyless gRPC clients: they export no Envoy stats.
func TargetsOf(proxies []xdsserver.ProxyStatus) []Target {
	out := make([]Target, 0, len(proxies))
	for _, p := range proxies {
		if p.IP == "" || p.Type == xdsserver.TypeProxyless {
			continue
		}
		l := map[string]string{
			LabelMetricsPath: StatsPath,
			LabelNamespace:   p.Namespace,
			LabelPod:         p.Name,
			LabelProxyType:   p.Type,
		}
		if v := p.Labels["app"]; v != "" {
			l[LabelApp] = v
		}
		if v := p.Labels["version"]; v != "" {
			l[LabelVersion] = v
		}
		out = append(out, Target{Address: TargetAddress(p.IP), Labels: l})
	}
	return out
}

// TargetsFunc adapts xdsserver.Server.Proxies to ScraperOptions.Targets.
func TargetsFunc(proxies func() []xdsserver.ProxyStatus) func() []Target {
	return func() []Target { return TargetsOf(proxies()) }
}

var errMethod = errors.New("method not allowed: use GET")

// SDGroup is one entry of Prometheus's HTTP service discovery answer.
type SDGroup struct {
	Targets []string          `json:"targets"`
	Labels  map[string]string `json:"labels"`
}

// NewSDHandler serves GET /api/v1/prometheus/targets: every target as a
// Prometheus http_sd_configs group (one per proxy, so each keeps its labels).
func NewSDHandler(targets func() []Target) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, http.StatusMethodNotAllowed, errMethod)
			return
		}
		groups := []SDGroup{}
		for _, t := range targets() {
			groups = append(groups, SDGroup{Targets: []string{t.Address}, Labels: t.Labels})
		}
		writeJSON(w, http.StatusOK, groups)
	})
}

// Mount serves the query API (NewHandler) and the service discovery
// endpoint (NewSDHandler) in front of next.
func Mount(next http.Handler, q *Querier, targets func() []Target) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", next)
	h := NewHandler(q)
	for _, p := range []string{EdgesPath, NodesPath, SeriesPath} {
		mux.Handle(p, h)
	}
	mux.Handle(TargetsPath, NewSDHandler(targets))
	return mux
}
