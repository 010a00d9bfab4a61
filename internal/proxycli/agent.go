package proxycli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/weft-mesh/weft/internal/proxy"
)

// podLabelsFile is the pod's labels as the injector's downward-API volume
// (istio-podinfo) gives them: one key="value" a line.
const podLabelsFile = "/etc/istio/pod/labels"

// runAgent is `weft-proxy proxy --proxyless-dir DIR`, the container the
// injector's grpc-agent template adds: no proxy and no capture, but the
// app's xDS bootstrap and certificate in DIR (proxy.StartProxylessIn),
// kept renewed, and GET /healthz/ready answering 200 once they are there
// (the app's containers start after it: the postStart hook waits for it),
// on every address of the pod with --kubernetes (the kubelet probes the pod
// IP, the hook localhost), else on the workload's IP only.
func runAgent(ctx context.Context, opts proxy.Options, dir string, kubernetes bool) error {
	p, err := proxy.StartProxylessIn(opts, dir)
	if err != nil {
		return err
	}
	defer p.Close()
	o := p.Options()
	host := o.IP.String()
	if kubernetes {
		host = ""
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.FormatUint(uint64(o.HealthPort), 10)))
	if err != nil {
		return fmt.Errorf("grpc-agent health port: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz/ready", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "bootstrap", p.BootstrapFile())
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	o.Logger.Info("grpc-agent ready", "component", "agent", "bootstrap", p.BootstrapFile(), "health", ln.Addr().String())
	select {
	case <-ctx.Done():
	case err := <-done:
		if !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("grpc-agent health server: %w", err)
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	return nil
}

// podLabels reads a downward-API labels file as k=v,k2=v2 (parseLabels'
// form); "" when it is missing or unreadable.
func podLabels(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return parsePodLabels(string(data))
}

// parsePodLabels turns key="value" lines into k=v,k2=v2, sorted by key.
// Values holding a comma are left out: parseLabels could not split them.
func parsePodLabels(s string) string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok || k == "" {
			continue
		}
		if uq, err := strconv.Unquote(v); err == nil {
			v = uq
		}
		if strings.ContainsAny(v, ",=") || strings.ContainsAny(k, ",") {
			continue
		}
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}
