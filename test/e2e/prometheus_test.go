package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestPrometheus runs a real Prometheus on the config `weft
// prometheus-config` prints, against the demo with traffic, and checks that
// it finds every proxy through the control plane's service discovery,
// answers Kiali's queries with Bookinfo's edges, as the embedded store does,
// and every panel of weft's Grafana dashboards (with TCP traffic from
// tcp-echo beside Bookinfo).
func TestPrometheus(t *testing.T) {
	promBin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Skip("prometheus is not on PATH: install Debian's prometheus package (apt-get install -y prometheus, as .ci/run does) to run this test")
	}
	m := startDemo(t)
	stopLoad := load(m)
	t.Cleanup(stopLoad)
	t.Cleanup(tcpEchoLoad(t, m))

	cfg, err := m.weft("prometheus-config")
	if err != nil {
		t.Fatalf("weft prometheus-config: %v\n%s", err, cfg)
	}
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	startPrometheus(t, promBin, "--config.file="+cfgFile, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr)
	promURL := "http://" + addr

	t.Run("service discovery lists every proxy", func(t *testing.T) {
		var groups []struct {
			Targets []string          `json:"targets"`
			Labels  map[string]string `json:"labels"`
		}
		getJSON(t, m.b.api()+"/api/v1/prometheus/targets", &groups)
		pods := map[string]bool{}
		for _, g := range groups {
			if g.Labels["__metrics_path__"] != "/stats/prometheus" || len(g.Targets) != 1 || !strings.HasSuffix(g.Targets[0], ":15090") {
				t.Errorf("bad target group %+v", g)
			}
			pods[g.Labels["pod"]] = true
		}
		for _, p := range []string{"productpage-v1-1", "details-v1-1", "reviews-v1-1", "reviews-v2-1", "reviews-v3-1", "ratings-v1-1"} {
			if !pods[p] {
				t.Errorf("no target for %s in %+v", p, groups)
			}
		}
	})

	t.Run("Prometheus scrapes the proxies", func(t *testing.T) {
		eventually(t, 60*time.Second, func() error {
			res, err := promQuery(promURL, `sum(rate(istio_requests_total{reporter="destination",destination_service_name="reviews"}[1m]))`)
			if err != nil {
				return err
			}
			if len(res) != 1 || res[0].value <= 0 {
				return fmt.Errorf("reviews' request rate in Prometheus: %+v (targets: %s)", res, promTargets(promURL))
			}
			return nil
		})
	})

	want := []string{"productpage→details", "productpage→reviews", "reviews→ratings"}
	t.Run("Kiali's graph query finds Bookinfo's edges", func(t *testing.T) {
		eventually(t, 60*time.Second, func() error {
			res, err := promQuery(promURL, `sum(rate(istio_requests_total{reporter="destination"}[1m])) by (source_workload,destination_workload,response_code)`)
			if err != nil {
				return err
			}
			var edges []string
			for _, r := range res {
				if r.value > 0 {
					edges = append(edges, r.metric["source_workload"]+"→"+r.metric["destination_workload"])
				}
			}
			return hasEdges(edges, want)
		})
	})

	t.Run("the embedded store shows the same edges", func(t *testing.T) {
		eventually(t, 30*time.Second, func() error {
			all, err := storeEdges(m)
			if err != nil {
				return err
			}
			var edges []string
			for _, e := range all {
				if e.RequestRate > 0 {
					edges = append(edges, e.Source.Workload+"→"+e.Destination.Workload)
				}
			}
			return hasEdges(edges, want)
		})
	})

	t.Run("every panel of weft's Grafana dashboards returns data", func(t *testing.T) {
		checkDashboards(t, promURL)
	})

	t.Run("Prometheus scrapes the control plane", func(t *testing.T) {
		eventually(t, 30*time.Second, func() error {
			res, err := promQuery(promURL, `sum(pilot_xds_pushes{job="weft-control-plane"})`)
			if err != nil {
				return err
			}
			if len(res) != 1 || res[0].value <= 0 {
				return fmt.Errorf("pilot_xds_pushes in Prometheus: %+v", res)
			}
			return nil
		})
	})
}

// storeEdge is an edge of the embedded metrics store's workload graph.
type storeEdge struct {
	Source      struct{ Workload string }
	Destination struct{ Workload string }
	RequestRate float64
}

// storeEdges returns the embedded store's edges over the last minute.
func storeEdges(m *mesh) ([]storeEdge, error) {
	var body struct{ Edges []storeEdge }
	err := fetchJSON(m.b.api()+"/api/v1/metrics/edges?window=1m", &body)
	return body.Edges, err
}

// hasEdges checks that every wanted "app→app" edge is among the
// "workload→workload" edges (workload names start with their app).
func hasEdges(edges, want []string) error {
	for _, w := range want {
		src, dst, _ := strings.Cut(w, "→")
		if !slices.ContainsFunc(edges, func(e string) bool {
			s, d, _ := strings.Cut(e, "→")
			return strings.HasPrefix(s, src+"-") && strings.HasPrefix(d, dst+"-")
		}) {
			return fmt.Errorf("no %s edge among %v", w, edges)
		}
	}
	return nil
}

// load fetches the product page through the ingress every 100 ms until stopped.
func load(m *mesh) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c := newClient()
		for ctx.Err() == nil {
			if _, _, err := m.get(c, "/productpage"); err != nil && ctx.Err() == nil {
				m.t.Logf("load: %v", err)
			}
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	return func() { cancel(); <-done }
}

// freeAddr returns a loopback address with a port nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startPrometheus runs prometheus in its own process group until the test ends.
func startPrometheus(t *testing.T, bin string, args ...string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting prometheus: %v", err)
	}
	p := &proc{cmd: cmd, out: out, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.stop(syscall.SIGTERM, 10*time.Second)
		if t.Failed() {
			t.Logf("prometheus output:\n%s", tail(out.String(), 4000))
		}
	})
}

type promSample struct {
	metric map[string]string
	value  float64
}

// promQuery runs an instant PromQL query through Prometheus's HTTP API.
func promQuery(base, q string) ([]promSample, error) {
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := fetchJSON(base+"/api/v1/query?"+url.Values{"query": {q}}.Encode(), &body); err != nil {
		return nil, err
	}
	if body.Status != "success" {
		return nil, fmt.Errorf("prometheus: %s: %s", q, body.Error)
	}
	var out []promSample
	for _, r := range body.Data.Result {
		s, _ := r.Value[1].(string)
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("prometheus value %v: %w", r.Value, err)
		}
		out = append(out, promSample{metric: r.Metric, value: v})
	}
	return out, nil
}

// promTargets summarizes Prometheus's targets and their health, for failures.
func promTargets(base string) string {
	var body struct {
		Data struct {
			ActiveTargets []struct {
				ScrapeURL string `json:"scrapeUrl"`
				Health    string `json:"health"`
				LastError string `json:"lastError"`
			} `json:"activeTargets"`
		} `json:"data"`
	}
	if err := fetchJSON(base+"/api/v1/targets", &body); err != nil {
		return err.Error()
	}
	var parts []string
	for _, tg := range body.Data.ActiveTargets {
		parts = append(parts, tg.ScrapeURL+" "+tg.Health+" "+tg.LastError)
	}
	return strings.Join(parts, "; ")
}

// jsonClient is shared by every fetchJSON: a client per call would leave its
// idle keep-alive connection open, and a few hundred of those exhaust a
// server's connection limit (Prometheus's --web.max-connections is 512).
var jsonClient = &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 4}}

func fetchJSON(u string, v any) error {
	resp, err := jsonClient.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusBadRequest {
		return fmt.Errorf("GET %s: HTTP %d: %.300s", u, resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("GET %s: %w: %.300s", u, err, b)
	}
	return nil
}

func getJSON(t *testing.T, u string, v any) {
	t.Helper()
	if err := fetchJSON(u, v); err != nil {
		t.Fatal(err)
	}
}
