package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/weft-mesh/weft/internal/controlplane/api"
)

// config is one way to reach the echo server.
type config struct {
	name string
	url  string
	host string // Host header, when the path needs one
	// proxies are the process groups of the proxies on the path.
	proxies []int
	// admins are the weft proxies' admin addresses (client side first),
	// where -profile takes CPU profiles from.
	admins []string
	// beside are process groups that work for the pair without being on
	// its path (weft's control plane: xDS, metrics scrapes, OTLP ingest).
	beside []int
}

type benchEnv struct {
	configs  []config
	versions string
}

const (
	echoDirect = "127.0.0.1:8080"
	weftServer = "127.0.9.2"
	weftClient = "127.0.9.1"
	weftCP     = "127.0.9.10"
	// The pair with telemetry off (no metrics, no access log, no tracing).
	weftOffServer = "127.0.9.4"
	weftOffClient = "127.0.9.3"
	// The pair speaking mutual TLS (join tokens, the control plane's CA).
	weftMTLSServer = "127.0.9.6"
	weftMTLSClient = "127.0.9.5"
)

// setup builds weft and fortio and starts the echo servers and every proxy pair.
func setup(ctx context.Context, dir string, procs *procSet, only string) (*benchEnv, error) {
	bins := filepath.Join(dir, "bin")
	// weft execs weft-proxy (beside it) for every proxy: what is measured is the slim binary.
	for _, b := range [][2]string{{"weft", "./cmd/weft"}, {"weft-proxy", "./cmd/weft-proxy"}, {"fortio", "fortio.org/fortio"}} {
		build := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(bins, b[0]), b[1])
		if b[0] == "weft-proxy" {
			build.Env = append(os.Environ(), "CGO_ENABLED=0") // static, as the image's: no libc mapped into each proxy
		}
		out, err := build.CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("building %s: %v\n%s", b[0], err, out)
		}
	}
	fortio, weft := filepath.Join(bins, "fortio"), filepath.Join(bins, "weft")
	for _, addr := range []string{echoDirect, weftServer + ":8080", weftOffServer + ":8080", weftMTLSServer + ":8080"} {
		if _, err := procs.start(dir, fortio, "server", "-http-port", addr, "-grpc-port", "disabled", "-redirect-port", "disabled"); err != nil {
			return nil, err
		}
	}
	if err := waitOK(ctx, "http://"+echoDirect+"/echo", "", 20*time.Second); err != nil {
		return nil, err
	}
	env := &benchEnv{configs: []config{{name: "direct", url: "http://" + echoDirect + "/echo"}}}
	starters := []struct {
		name  string
		start func() (config, error)
	}{
		{"nginx", func() (config, error) { return startNginx(ctx, dir, procs) }},
		{"haproxy", func() (config, error) { return startHAProxy(ctx, dir, procs) }},
		{"weft", func() (config, error) { return startWeft(ctx, dir, weft, procs) }},
		{"weft-off", func() (config, error) {
			return startWeftPair(ctx, weft, dir, procs, "weft-off", weftOffClient, weftOffServer, "echo-off", false,
				"--disable-metrics", "--disable-access-log", "--otlp-endpoint", "off")
		}},
		{"weft-mtls", func() (config, error) {
			return startWeftPair(ctx, weft, dir, procs, "weft-mtls", weftMTLSClient, weftMTLSServer, "echo-mtls", true, "--trace-sampling", "1")
		}},
	}
	for _, s := range starters {
		if only != "" && only != s.name && s.name != "nginx" && !(only == "weft" && strings.HasPrefix(s.name, "weft")) {
			continue
		}
		c, err := s.start()
		if err != nil {
			return nil, fmt.Errorf("starting the %s pair: %w", s.name, err)
		}
		env.configs = append(env.configs, c)
	}
	var cp []int // every weft pair shares the first one's control plane
	for i, c := range env.configs {
		if c.beside != nil && cp == nil {
			cp = c.beside
		}
		if strings.HasPrefix(c.name, "weft") {
			env.configs[i].beside = cp
		}
	}
	env.versions = versions()
	return env, nil
}

func startNginx(ctx context.Context, dir string, procs *procSet) (config, error) {
	c := config{name: "nginx", url: "http://127.0.0.1:18082/echo"}
	for _, side := range []string{"nginx_a.conf", "nginx_b.conf"} {
		prefix := filepath.Join(dir, strings.TrimSuffix(side, ".conf"))
		if err := os.MkdirAll(filepath.Join(prefix, "tmp"), 0o755); err != nil {
			return c, err
		}
		if err := copyFile(filepath.Join("bench", "ref", side), filepath.Join(prefix, side)); err != nil {
			return c, err
		}
		cmd, err := procs.start(dir, "nginx", "-p", prefix+"/", "-c", side)
		if err != nil {
			return c, err
		}
		c.proxies = append(c.proxies, cmd.Process.Pid)
	}
	return c, waitOK(ctx, c.url, "", 20*time.Second)
}

func startHAProxy(ctx context.Context, dir string, procs *procSet) (config, error) {
	c := config{name: "haproxy", url: "http://127.0.0.1:18092/echo"}
	for _, side := range []string{"haproxy_a.cfg", "haproxy_b.cfg"} {
		cmd, err := procs.start(dir, "haproxy", "-db", "-f", filepath.Join("bench", "ref", side))
		if err != nil {
			return c, err
		}
		c.proxies = append(c.proxies, cmd.Process.Pid)
	}
	return c, waitOK(ctx, c.url, "", 20*time.Second)
}

// startWeft runs a control plane (with its OTLP receiver) and the pair
// with weft's defaults: Istio metrics, access log and 1% tracing on.
func startWeft(ctx context.Context, dir, weft string, procs *procSet) (config, error) {
	cp, err := procs.start(dir, weft, "control-plane", "--data-dir", filepath.Join(dir, "cp"),
		"--http-address", weftCP+":15014", "--log-level", "warn",
		"--otlp-grpc-address", weftCP+":4317", "--otlp-http-address", weftCP+":4318", "--secure-xds-address", weftCP+":15012")
	if err != nil {
		return config{name: "weft"}, err
	}
	// The pairs need the API (join tokens) from the start.
	if err := waitAPI(ctx, api.NewClient("http://"+weftCP+":15014"), 30*time.Second, cp.Process.Pid); err != nil {
		return config{name: "weft"}, err
	}
	c, err := startWeftPair(ctx, weft, dir, procs, "weft", weftClient, weftServer, "echo", false, "--trace-sampling", "1")
	c.beside = []int{cp.Process.Pid}
	return c, err
}

// startWeftPair runs two sidecars: client → (tunnel) → server sidecar →
// echo (service svc). Both join the mesh with a join token (in their
// environment), as registration needs; without mtls a DestinationRule
// (tls DISABLE) keeps the hop between them plaintext.
func startWeftPair(ctx context.Context, weft, dir string, procs *procSet, name, client, server, svc string, mtls bool, extra ...string) (config, error) {
	c := config{name: name, url: "http://" + client + ":15001/echo", host: svc + ":8080"}
	apiURL := "http://" + weftCP + ":15014"
	if !mtls {
		dr := filepath.Join(dir, svc+"-plaintext.yaml")
		yaml := "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: " + svc + "-plaintext, namespace: default}\n" +
			"spec: {host: " + svc + ".default.svc.cluster.local, trafficPolicy: {tls: {mode: DISABLE}}}\n"
		if err := os.WriteFile(dr, []byte(yaml), 0o644); err != nil {
			return c, err
		}
		if out, err := exec.CommandContext(ctx, weft, "apply", "--control-plane", apiURL, "-f", dr).CombinedOutput(); err != nil {
			return c, fmt.Errorf("weft apply %s: %w\n%s", dr, err, out)
		}
	}
	xds := weftCP + ":15010" // its host: the proxies take :15012 for xDS and the CA
	sides := [][]string{
		{"--name", svc + "-v1-1", "--service", svc, "--port", "http:8080", "--ip", server},
		// The bench process is the client workload's app: the load enters
		// that sidecar's outbound port, which serves only the app.
		{"--name", name + "-client-v1-1", "--service", name + "-client", "--port", "http:9000", "--ip", client,
			"--outbound-allow", "pid:" + strconv.Itoa(os.Getpid())},
	}
	for _, s := range sides {
		args := append([]string{"proxy", "--namespace", "default", "--version", "v1", "--xds-address", xds}, s...)
		// A join token per sidecar, from the control plane.
		sa := s[1] // the workload name doubles as its service account
		out, err := exec.CommandContext(ctx, weft, "token", "create", "--control-plane", apiURL,
			"--namespace", "default", "--service-account", sa).Output()
		if err != nil {
			return c, fmt.Errorf("weft token create: %w", err)
		}
		args = append(append(args, extra...), "--service-account", sa)
		cmd, err := procs.startEnv(dir, []string{"WEFT_JOIN_TOKEN=" + strings.Fields(string(out))[0]}, weft, args...)
		if err != nil {
			return c, err
		}
		c.proxies = append(c.proxies, cmd.Process.Pid)
	}
	c.admins = []string{client + ":15000", server + ":15000"}
	return c, waitOK(ctx, c.url, c.host, 30*time.Second)
}

func copyFile(from, to string) error {
	data, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, data, 0o644)
}

func versions() string {
	out := []string{runtime.Version()}
	for _, c := range [][]string{{"nginx", "-v"}, {"haproxy", "-v"}} {
		b, _ := exec.Command(c[0], c[1:]...).CombinedOutput()
		line := strings.SplitN(strings.TrimSpace(string(b)), "\n", 2)[0]
		out = append(out, line)
	}
	cpu := "unknown CPU"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				cpu = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	return fmt.Sprintf("%d cores, %s; %s", runtime.NumCPU(), cpu, strings.Join(out, "; "))
}
