// Package cpmetrics defines the control plane's own metrics, under Istio's
// pilot_* names so istiod dashboards read them, in a registry of their own
// (no global state), fed through xdsserver.Hooks and a config store
// subscription, and served as Prometheus text on :15014/metrics.
package cpmetrics

import (
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/weft-mesh/weft/internal/config"
	"github.com/weft-mesh/weft/internal/controlplane/store"
	"github.com/weft-mesh/weft/internal/controlplane/xdsserver"
)

// Path is where Mount serves the metrics.
const Path = "/metrics"

// Config event values of pilot_config_events' event label.
const (
	EventAdd    = "add"
	EventUpdate = "update"
	EventDelete = "delete"
)

// Metrics holds the control plane's metrics. Create it with New; it is
// safe for concurrent use.
type Metrics struct {
	reg          *prometheus.Registry
	pushes       *prometheus.CounterVec
	rejects      *prometheus.CounterVec
	convergence  prometheus.Histogram
	pushTime     prometheus.Histogram
	configEvents *prometheus.CounterVec

	mu   sync.Mutex
	seen map[config.Key]int64 // stored objects' resource versions, for config events
}

// convergenceBuckets are istiod's pilot_proxy_convergence_time buckets (seconds).
var convergenceBuckets = []float64{.1, .5, 1, 3, 5, 10, 20, 30}

// New returns the metrics; proxies (xdsserver.Server.Proxies, may be nil)
// is read at each scrape for the pilot_xds gauge.
func New(proxies func() []xdsserver.ProxyStatus) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		pushes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pilot_xds_pushes", Help: "Pilot build and send errors for lds, rds, cds and eds.",
		}, []string{"type"}),
		rejects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pilot_total_xds_rejects", Help: "Total number of xDS responses from pilot rejected by proxy.",
		}, []string{"type"}),
		convergence: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "pilot_proxy_convergence_time", Help: "Delay in seconds between config change and a proxy receiving all required configuration.",
			Buckets: convergenceBuckets,
		}),
		pushTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "pilot_xds_push_time", Help: "Total time in seconds Pilot takes to build and set one proxy's configuration.",
			Buckets: prometheus.DefBuckets,
		}),
		configEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pilot_config_events", Help: "Config changes seen by the control plane, by kind and event (add, update, delete).",
		}, []string{"kind", "event"}),
		seen: map[config.Key]int64{},
	}
	m.reg.MustRegister(m.pushes, m.rejects, m.convergence, m.pushTime, m.configEvents,
		&connected{proxies: proxies, desc: prometheus.NewDesc("pilot_xds", "Number of endpoints connected to this pilot using XDS.", []string{"version"}, nil)},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// WatchTraceStore exports the embedded trace store's size, read at each
// scrape: weft_trace_store_spans, _traces and _bytes.
func (m *Metrics) WatchTraceStore(stats func() (spans, traces int, bytes int64)) {
	get := func(pick func(spans, traces int, bytes int64) float64) func() float64 {
		return func() float64 { return pick(stats()) }
	}
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "weft_trace_store_spans", Help: "Spans held in the embedded trace store."},
			get(func(s, _ int, _ int64) float64 { return float64(s) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "weft_trace_store_traces", Help: "Traces held in the embedded trace store."},
			get(func(_, t int, _ int64) float64 { return float64(t) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "weft_trace_store_bytes", Help: "Estimated bytes of the spans held in the embedded trace store."},
			get(func(_, _ int, b int64) float64 { return float64(b) })))
}

// WatchMetricsStore exports the embedded metrics store's size, read at
// each scrape: weft_metrics_store_series and _evicted_series_total.
func (m *Metrics) WatchMetricsStore(stats func() (series, evicted int)) {
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "weft_metrics_store_series", Help: "Series held in the embedded metrics store."},
			func() float64 { s, _ := stats(); return float64(s) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "weft_metrics_store_evicted_series_total", Help: "Series evicted from the embedded metrics store at its series limit."},
			func() float64 { _, e := stats(); return float64(e) }))
}

// Registry returns the registry the metrics are in.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Hooks returns the xdsserver hooks that feed the metrics.
func (m *Metrics) Hooks() xdsserver.Hooks {
	return xdsserver.Hooks{
		Pushed:   func(typeURL string) { m.pushes.WithLabelValues(typeName(typeURL)).Inc() },
		Rejected: func(typeURL string) { m.rejects.WithLabelValues(typeName(typeURL)).Inc() },
		SnapshotSet: func(took, sinceChange time.Duration) {
			m.pushTime.Observe(took.Seconds())
			if sinceChange > 0 {
				m.convergence.Observe(sinceChange.Seconds())
			}
		},
	}
}

// typeName is istiod's short name of an xDS type URL.
func typeName(typeURL string) string {
	switch typeURL {
	case xdsserver.ClusterType:
		return "cds"
	case xdsserver.EndpointType:
		return "eds"
	case xdsserver.ListenerType:
		return "lds"
	case xdsserver.RouteType:
		return "rds"
	}
	return "other"
}

// WatchStore counts config events (pilot_config_events) from now on: it
// diffs the store's objects by resource version after every change.
func (m *Metrics) WatchStore(st store.Store) {
	_, objs := st.Snapshot()
	m.mu.Lock()
	for _, o := range objs {
		m.seen[o.Key()] = o.ResourceVersion
	}
	m.mu.Unlock()
	st.Subscribe(func(int64) {
		_, objs := st.Snapshot()
		m.configChanged(objs)
	})
}

func (m *Metrics) configChanged(objs []*config.Object) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := make(map[config.Key]int64, len(objs))
	for _, o := range objs {
		k := o.Key()
		now[k] = o.ResourceVersion
		prev, ok := m.seen[k]
		switch {
		case !ok:
			m.configEvents.WithLabelValues(k.Kind, EventAdd).Inc()
		case prev != o.ResourceVersion:
			m.configEvents.WithLabelValues(k.Kind, EventUpdate).Inc()
		}
	}
	for k := range m.seen {
		if _, ok := now[k]; !ok {
			m.configEvents.WithLabelValues(k.Kind, EventDelete).Inc()
		}
	}
	m.seen = now
}

// Handler serves the metrics in Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Mount serves GET /metrics in front of next.
func Mount(next http.Handler, m *Metrics) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", next)
	mux.Handle("GET "+Path, m.Handler())
	return mux
}

// connected is the pilot_xds gauge: connected proxies by version, read
// from the xDS server at each scrape.
type connected struct {
	proxies func() []xdsserver.ProxyStatus
	desc    *prometheus.Desc
}

func (c *connected) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *connected) Collect(ch chan<- prometheus.Metric) {
	if c.proxies == nil {
		return
	}
	byVersion := map[string]int{}
	for _, p := range c.proxies() {
		byVersion[p.Version]++
	}
	for v, n := range byVersion {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), v)
	}
}
