package cli

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/weft-mesh/weft/internal/controlplane/telemetry/metrics"
)

// runPrometheusConfig prints a prometheus.yml for this mesh: the proxies
// found through the control plane's HTTP service discovery, and the
// control plane's own metrics.
func runPrometheusConfig(_ context.Context, env *Env) error {
	fs := newFlags(env, "prometheus-config")
	client := controlPlaneFlag(fs, env)
	if err := parseFlagsNoArgs(fs, env.Args); err != nil {
		return err
	}
	c, err := client()
	if err != nil {
		return err
	}
	cfg, err := prometheusConfig(c.BaseURL())
	if err != nil {
		return err
	}
	_, err = fmt.Fprint(env.Stdout, cfg)
	return err
}

// prometheusConfig returns the prometheus.yml for the control plane at base
// (http://127.0.0.1:15014).
func prometheusConfig(base string) (string, error) {
	u, err := url.Parse(base)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("--control-plane %q: want http://HOST:PORT", base)
	}
	sd := strings.TrimSuffix(base, "/") + metrics.TargetsPath
	return fmt.Sprintf(`# prometheus.yml for weft, from weft prometheus-config.
# Run: prometheus --config.file=prometheus.yml
global:
  scrape_interval: 5s
  evaluation_interval: 5s
scrape_configs:
  # Every connected proxy's Istio metrics (POD_IP:15090/stats/prometheus),
  # listed by the control plane with namespace, pod, app, version and proxy_type.
  - job_name: weft-proxies
    http_sd_configs:
      - url: %q
        refresh_interval: 5s
  # The control plane's own metrics (pilot_*).
  - job_name: weft-control-plane
    scheme: %s
    metrics_path: /metrics
    static_configs:
      - targets: [%q]
`, sd, u.Scheme, u.Host), nil
}
