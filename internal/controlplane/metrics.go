package controlplane

import (
	"context"
	"log/slog"
	"net/http"
	"sync"

	"github.com/weft-mesh/weft/internal/controlplane/telemetry/cpmetrics"
	"github.com/weft-mesh/weft/internal/controlplane/telemetry/metrics"
	"github.com/weft-mesh/weft/internal/controlplane/xdsserver"
)

// startMetrics serves the proxies' metrics (embedded store fed by a
// scraper, or the Prometheus at opts.PrometheusURL), Prometheus service
// discovery and the control plane's own metrics in front of handler. The
// returned stop ends the scraper.
func startMetrics(ctx context.Context, opts Options, xds *xdsserver.Server, cpm *cpmetrics.Metrics,
	handler http.Handler, log *slog.Logger) (http.Handler, func(), error) {
	targets := metrics.TargetsFunc(xds.Proxies)
	stop := func() {}
	var src metrics.Source
	if opts.PrometheusURL != "" {
		prom, err := metrics.NewPrometheus(opts.PrometheusURL, nil)
		if err != nil {
			return nil, nil, err
		}
		src = prom
		log.Info("metrics queries go to Prometheus", "url", opts.PrometheusURL)
	} else {
		st := metrics.NewStore(metrics.StoreOptions{Retention: opts.MetricsRetention, MaxSeries: opts.MetricsMaxSeries})
		cpm.WatchMetricsStore(st.Stats)
		sc := metrics.NewScraper(metrics.ScraperOptions{Store: st, Targets: targets, Logger: opts.Logger})
		sctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			sc.Run(sctx)
		}()
		stop = func() { cancel(); wg.Wait() }
		src = st
	}
	handler = metrics.Mount(handler, metrics.NewQuerier(src), targets)
	return cpmetrics.Mount(handler, cpm), stop, nil
}
