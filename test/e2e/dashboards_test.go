package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/weft-mesh/weft/internal/dashboards"
)

// tcpEchoLoad joins tcp-echo v1 (Istio's tcp-echo sample server beside a
// sidecar) to the demo's mesh, routes the ingress gateway's port 31400 to it
// with the repository's tcp-echo sample, and opens a connection through it
// every 200 ms until stopped: the TCP traffic the dashboards' TCP panels show.
func tcpEchoLoad(t *testing.T, m *mesh) (stop func()) {
	t.Helper()
	xds := m.b.controlPlaneIP() + ":15010"
	startJoined(t, m.b.api(), "default", "tcp-echo", "run", "--name", "tcp-echo-v1-1", "--namespace", "default", "--service", "tcp-echo", "--version", "v1",
		"--port", "tcp:9000", "--ip", m.b.ip(3, 1), "--xds-address", xds, "--otlp-endpoint", "off",
		"--", weftBin, "tcp-echo", "9000", "one")
	m.apply(sampleIn(t, "tcp-echo", "tcp-echo-all-v1.yaml"))
	gw := net.JoinHostPort(strings.Split(m.b.ingress(), ":")[0], "31400")
	echo := func() error {
		c, err := net.DialTimeout("tcp", gw, 2*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintln(c, "hello")
		line, err := bufio.NewReader(c).ReadString('\n')
		if err == nil && strings.TrimSpace(line) != "one hello" {
			err = fmt.Errorf("tcp-echo answered %q", line)
		}
		return err
	}
	eventually(t, 30*time.Second, echo)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			if err := echo(); err != nil && ctx.Err() == nil {
				t.Logf("tcp load: %v", err)
			}
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	return func() { cancel(); <-done }
}

// checkDashboards runs every panel query of every dashboard of `weft
// dashboards` against Prometheus: each must parse and return data for at
// least one assignment of the dashboard's variables that the mesh has (the
// label values Grafana's variable dropdowns would offer).
func checkDashboards(t *testing.T, promURL string) {
	all, err := dashboards.Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range all {
		var combos []map[string]string
		eventually(t, 60*time.Second, func() error {
			combos, err = variableValues(promURL, d.Variables)
			return err
		})
		for _, p := range d.Panels {
			t.Run(d.Name+"/"+p.Title, func(t *testing.T) {
				eventually(t, 60*time.Second, func() error {
					for _, q := range p.Queries {
						if err := anyData(promURL, q, combos); err != nil {
							return err
						}
					}
					return nil
				})
			})
		}
	}
}

// anyData runs q with each assignment of its variables until one returns data.
func anyData(promURL, q string, combos []map[string]string) error {
	for _, vars := range combos {
		expr, err := dashboards.Expand(q, "1m", vars)
		if err != nil {
			return err
		}
		res, err := promQuery(promURL, expr)
		if err != nil {
			return err
		}
		if len(res) > 0 {
			return nil
		}
	}
	return fmt.Errorf("no data for %q with any of %v", q, combos)
}

// variableValues returns the assignments of a dashboard's variables that the
// mesh's metrics have: every distinct combination of their labels.
func variableValues(promURL string, names []string) ([]map[string]string, error) {
	if len(names) == 0 {
		return []map[string]string{{}}, nil
	}
	label := map[string]string{"service": "destination_service", "workload": "destination_workload", "namespace": "destination_workload_namespace"}
	var labels []string
	for _, n := range names {
		l, ok := label[n]
		if !ok {
			return nil, fmt.Errorf("dashboard variable %q: the test does not know its label", n)
		}
		labels = append(labels, l)
	}
	res, err := promQuery(promURL, "group by ("+strings.Join(labels, ", ")+`) ({__name__=~"istio_requests_total|istio_tcp_sent_bytes_total", reporter="destination"})`)
	if err != nil {
		return nil, err
	}
	var combos []map[string]string
	for _, r := range res {
		vars := map[string]string{}
		for i, n := range names {
			vars[n] = r.metric[labels[i]]
		}
		combos = append(combos, vars)
	}
	if len(combos) == 0 {
		return nil, fmt.Errorf("Prometheus has no %v yet", labels)
	}
	return combos, nil
}
