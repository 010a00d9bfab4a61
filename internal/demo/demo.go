// Package demo runs `weft demo`: the control plane, Istio's Bookinfo with a
// sidecar beside every workload, an ingress gateway and a light load, each a
// real process: the control plane and the apps of this binary, the sidecars
// (weft-proxy run -- weft bookinfo …) and the gateway of weft-proxy.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/weft-mesh/weft/internal/controlplane/api"
	"github.com/weft-mesh/weft/internal/controlplane/authz"
	"github.com/weft-mesh/weft/internal/proxybin"
)

// Apps the demo can run.
const (
	AppBookinfo    = "bookinfo"
	AppTemperature = "temperature"
)

// Options configure the demo.
type Options struct {
	// App is AppBookinfo (default) or AppTemperature.
	App string
	// Proxyless runs the temperature demo's API and converters with no
	// sidecar, as proxyless gRPC apps (weft run --proxyless); the demo
	// declares their services (ServiceEntries), which they do not register.
	Proxyless      bool
	NoLoad         bool
	IPBase         netip.Addr // workloads get IPBase+1 … +6
	Ingress        string     // ip:port of the ingress gateway
	ControlPlaneIP string
	DataDir        string // "" = a temporary directory, removed at a clean end
	Executable     string // the weft binary; "" = this process's
	// ProxyExecutable is weft-proxy, which runs the sidecars and the
	// gateway ("" = the one proxybin finds).
	ProxyExecutable string
	// Replicas runs more than one instance of a workload: "reviews-v2" → 2
	// runs reviews-v2-1 and reviews-v2-2, each with its own sidecar and IP.
	Replicas map[string]int
	// OTLPEndpoint is where the sidecars and the gateway send their spans
	// (weft run --otlp-endpoint; "" = the control plane's receiver).
	OTLPEndpoint string
	// OTLPForward is an OTLP collector the control plane forwards every
	// span it receives to (control-plane --otlp-forward; "" = none).
	OTLPForward string
	// Verbose sends every child's output to Stderr, each line prefixed by the
	// child's name, instead of to log files under DataDir/logs.
	Verbose bool
	Out     io.Writer // URLs and hints for the user (default os.Stdout)
	Stderr  io.Writer // children's output when Verbose (default os.Stderr)
	Logger  *slog.Logger
}

// workload is one app instance: a process of this binary beside its sidecar.
type workload struct {
	name, service, version string
	port                   string   // NAME:NUMBER (default http:9080)
	account                string   // service account (default bookinfo-SERVICE)
	args                   []string // the app's command line after the weft binary
}

var workloads = []workload{
	{name: "productpage-v1-1", service: "productpage", version: "v1", args: []string{"bookinfo", "productpage"}},
	{name: "details-v1-1", service: "details", version: "v1", args: []string{"bookinfo", "details"}},
	{name: "reviews-v1-1", service: "reviews", version: "v1", args: []string{"bookinfo", "reviews"}},
	{name: "reviews-v2-1", service: "reviews", version: "v2", args: []string{"bookinfo", "reviews"}},
	{name: "reviews-v3-1", service: "reviews", version: "v3", args: []string{"bookinfo", "reviews"}},
	{name: "ratings-v1-1", service: "ratings", version: "v1", args: []string{"bookinfo", "ratings"}},
}

// temperatureWorkloads are the gRPC demo's: the HTTP API and two
// converters, v2 a canary failing 30% of calls with UNAVAILABLE.
var temperatureWorkloads = []workload{
	{name: "temperature-v1-1", service: "temperature", version: "v1", account: "temperature", args: []string{"temperature", "api"}},
	{name: "converter-v1-1", service: "converter", version: "v1", port: "grpc:50051", account: "converter", args: []string{"temperature", "converter"}},
	{name: "converter-v2-1", service: "converter", version: "v2", port: "grpc:50051", account: "converter",
		args: []string{"temperature", "converter", "--fail-percent", "30"}},
}

// Run starts the demo and blocks until ctx ends or a process dies.
func Run(ctx context.Context, opts Options) (err error) {
	if err := defaults(&opts); err != nil {
		return err
	}
	ingressIP, ingressPort, err := net.SplitHostPort(opts.Ingress)
	if err != nil {
		return fmt.Errorf("--ingress %q: %w", opts.Ingress, err)
	}
	if opts.DataDir == "" {
		dir, mkErr := os.MkdirTemp("", "weft-demo-")
		if mkErr != nil {
			return fmt.Errorf("creating the data directory: %w", mkErr)
		}
		defer func() {
			if err == nil { // keep the logs of a failed demo
				_ = os.RemoveAll(dir)
			}
		}()
		opts.DataDir = dir
	}
	logs := filepath.Join(opts.DataDir, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		return fmt.Errorf("creating the log directory: %w", err)
	}
	var verbose io.Writer
	if opts.Verbose {
		verbose = opts.Stderr
	} else {
		fmt.Fprintf(opts.Out, "weft demo: starting; logs of every process in %s\n", logs)
	}
	if opts.ProxyExecutable == "" {
		if opts.ProxyExecutable, err = (proxybin.Finder{Executable: opts.Executable, Progress: opts.Out}).Find(ctx); err != nil {
			return err
		}
	}
	sup := newSupervisor(opts.Executable, logs, verbose, opts.Logger)
	sup.proxyExe = opts.ProxyExecutable
	if err := becomeSubreaper(); err != nil {
		opts.Logger.Warn("orphaned processes may outlive the demo", "component", "demo", "err", err)
	} else {
		sup.reap = true
	}
	defer sup.stopAll(10 * time.Second)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := run(ctx, opts, sup, ingressIP, ingressPort, logs); err != nil && !errors.Is(err, errInterrupted) {
		return err
	}
	return nil
}

// run starts the processes, waits for them and keeps the demo going.
func run(ctx context.Context, opts Options, sup *supervisor, ingressIP, ingressPort, logs string) error {
	xds := net.JoinHostPort(opts.ControlPlaneIP, "15010")
	apiURL := "http://" + net.JoinHostPort(opts.ControlPlaneIP, "15014")
	if err := sup.start("control-plane", "control-plane", "--data-dir", filepath.Join(opts.DataDir, "control-plane"),
		"--xds-address", xds, "--http-address", net.JoinHostPort(opts.ControlPlaneIP, "15014"),
		"--secure-xds-address", net.JoinHostPort(opts.ControlPlaneIP, "15012"),
		"--otlp-grpc-address", net.JoinHostPort(opts.ControlPlaneIP, "4317"),
		"--otlp-http-address", net.JoinHostPort(opts.ControlPlaneIP, "4318"),
		"--console-address", net.JoinHostPort(opts.ControlPlaneIP, "20001"), "--otlp-forward", opts.OTLPForward); err != nil {
		return err
	}
	if err := waitFor(ctx, sup, 30*time.Second, "the control plane API at "+apiURL, func() error { return get(apiURL + api.ProxiesPath) }); err != nil {
		return err
	}
	// The control plane's admin credentials, as `weft apply` finds them.
	creds, err := authz.ReadCredentials(filepath.Join(opts.DataDir, "control-plane"))
	if err != nil {
		return fmt.Errorf("the control plane's admin credentials: %w", err)
	}
	client := api.NewClientWith(apiURL, api.ClientOptions{Token: creds.Token})
	gw, ws := gatewayYAML(ingressPort), workloads
	if opts.App == AppTemperature {
		ws = temperatureWorkloads
	}
	ws, err = withReplicas(ws, opts.Replicas)
	if err != nil {
		return err
	}
	page, ready := "http://"+opts.Ingress+"/productpage", getPage
	if opts.App == AppTemperature {
		gw = temperatureGatewayYAML(ingressPort)
		page, ready = "http://"+opts.Ingress+"/?from=Celsius&to=Kelvin&temperature=150", get
	}
	if _, err := client.Apply(ctx, "weft-demo", []byte(gw)); err != nil {
		return fmt.Errorf("applying the demo's gateway: %w", err)
	}
	if opts.Proxyless {
		if _, err := client.Apply(ctx, "weft-demo", []byte(proxylessServicesYAML(ws, workloadIPs(opts.IPBase, len(ws))))); err != nil {
			return fmt.Errorf("applying the proxyless workloads' services: %w", err)
		}
		if _, err := client.Apply(ctx, "weft-demo", []byte(proxylessMTLSYAML)); err != nil {
			return fmt.Errorf("applying the proxyless converters' mTLS: %w", err)
		}
	}
	// Every proxy joins the mesh with its own token: mTLS between sidecars.
	token := func(ns, sa string) (string, error) {
		t, err := client.CreateToken(ctx, ns, sa, 24*time.Hour)
		if err != nil {
			return "", fmt.Errorf("creating a join token for %s/%s: %w", ns, sa, err)
		}
		return t.Token, nil
	}
	gwToken, err := token("istio-system", "istio-ingressgateway-service-account")
	if err != nil {
		return err
	}
	if err := sup.startProxy("istio-ingressgateway", gwToken, "gateway", "--ip", ingressIP, "--xds-address", xds, "--trace-sampling", "100",
		"--otlp-endpoint", opts.OTLPEndpoint, "--service-account", "istio-ingressgateway-service-account"); err != nil {
		return err
	}
	ips, err := startWorkloads(sup, opts.IPBase, xds, opts.OTLPEndpoint, ws, token, opts.Proxyless)
	if err != nil {
		return err
	}
	if opts.Proxyless {
		ips = nil // no sidecars: the page below answers once the apps have their xDS config
	}
	for _, ip := range append(ips, ingressIP) {
		ready := "http://" + net.JoinHostPort(ip, "15021") + "/healthz/ready"
		if err := waitFor(ctx, sup, 60*time.Second, "the proxy at "+ip, func() error { return get(ready) }); err != nil {
			return err
		}
	}
	if err := waitFor(ctx, sup, 60*time.Second, "the app at "+page, func() error { return ready(page) }); err != nil {
		return err
	}
	if opts.Verbose {
		logs = "stderr (--verbose)"
	}
	if opts.App == AppTemperature {
		printTemperature(opts.Out, page, apiURL, logs, opts.Proxyless)
	} else {
		printReady(opts.Out, page, apiURL, logs)
	}
	if !opts.NoLoad {
		go load(ctx, page, ready)
	}
	// From here on the demo is a small cluster: a process that exits (an
	// app, a sidecar, the gateway or the control plane) is restarted with a
	// back-off while the rest serve on; only Ctrl-C stops the demo.
	sup.restartMode(opts.Out)
	<-ctx.Done()
	fmt.Fprintln(opts.Out, "\nstopping the demo…")
	return nil
}

// withReplicas expands ws by replicas (workload name SERVICE-VERSION →
// instances): instance i of a workload is named SERVICE-VERSION-i.
func withReplicas(ws []workload, replicas map[string]int) ([]workload, error) {
	known := map[string]bool{}
	var out []workload
	for _, w := range ws {
		name := w.service + "-" + w.version
		known[name] = true
		n, ok := replicas[name]
		if !ok {
			n = 1
		}
		if n < 1 || n > 20 {
			return nil, fmt.Errorf("--replicas %s=%d: want 1 to 20 instances", name, n)
		}
		for i := 1; i <= n; i++ {
			r := w
			r.name = fmt.Sprintf("%s-%d", name, i)
			out = append(out, r)
		}
	}
	for name := range replicas {
		if !known[name] {
			var names []string
			for _, w := range ws {
				names = append(names, w.service+"-"+w.version)
			}
			return nil, fmt.Errorf("--replicas %s: no such workload; the demo runs %s", name, strings.Join(names, ", "))
		}
	}
	return out, nil
}

func defaults(o *Options) error {
	if o.Out == nil {
		o.Out = os.Stdout
	}
	if o.Stderr == nil {
		o.Stderr = os.Stderr
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if o.Executable == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("finding the weft binary: %w", err)
		}
		o.Executable = exe
	}
	switch o.App {
	case "":
		o.App = AppBookinfo
	case AppBookinfo, AppTemperature:
	default:
		return fmt.Errorf("--app %q: want %s or %s", o.App, AppBookinfo, AppTemperature)
	}
	if o.Proxyless && o.App != AppTemperature {
		return fmt.Errorf("--proxyless: only --app %s has proxyless gRPC apps (Bookinfo speaks HTTP)", AppTemperature)
	}
	if !o.IPBase.IsValid() || !o.IPBase.Is4() || !o.IPBase.IsLoopback() {
		return fmt.Errorf("--ip-base %v: want an IPv4 loopback address such as 127.0.1.0", o.IPBase)
	}
	if ip := net.ParseIP(o.ControlPlaneIP); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("--control-plane-ip %q: want a loopback address", o.ControlPlaneIP)
	}
	return nil
}

// startWorkloads starts every workload of ws beside its sidecar (or, when
// proxyless, under weft run --proxyless), each with a join token of its
// service account, on the pod IPs workloadIPs gives.
func startWorkloads(sup *supervisor, base netip.Addr, xds, otlp string, ws []workload, token func(ns, sa string) (string, error), proxyless bool) ([]string, error) {
	var ips []string
	ip := base
	for _, w := range ws {
		ip = ip.Next()
		ips = append(ips, ip.String())
		port, account := w.port, w.account
		if port == "" {
			port = "http:9080"
		}
		if account == "" {
			account = "bookinfo-" + w.service
		}
		tok, err := token("default", account)
		if err != nil {
			return nil, err
		}
		if proxyless {
			if err := sup.startProxy(w.name, tok, proxylessRun(w, port, account, ip.String(), xds, sup.exe)...); err != nil {
				return nil, err
			}
			continue
		}
		args := []string{"run", "--name", w.name, "--namespace", "default", "--service", w.service,
			"--version", w.version, "--port", port, "--service-account", account,
			"--ip", ip.String(), "--xds-address", xds, "--trace-sampling", "100", "--otlp-endpoint", otlp, "--", sup.exe}
		if err := sup.startProxy(w.name, tok, append(args, w.args...)...); err != nil {
			return nil, err
		}
	}
	return ips, nil
}

func printReady(w io.Writer, page, apiURL, logs string) {
	env := ""
	if apiURL != "http://127.0.0.1:15014" {
		env = "  export WEFT_CONTROL_PLANE=" + apiURL + "\n"
	}
	fmt.Fprintf(w, `
weft demo is running: Bookinfo with a sidecar beside every workload.

  Bookinfo (through the ingress gateway):  %s
  Control plane API:                       %s
  Console (graph, traces, config):         %s
  Logs of every process:                   %s

Try, in another terminal (from the repository):
%s  go run ./cmd/weft proxy-status
  go run ./cmd/weft apply -f samples/bookinfo/networking/destination-rule-all.yaml
  go run ./cmd/weft apply -f samples/bookinfo/networking/virtual-service-all-v1.yaml
  go run ./cmd/weft apply -f samples/bookinfo/networking/virtual-service-reviews-test-v2.yaml
      (then sign in as jason: reviews v2, black stars)
  go run ./cmd/weft proxy-config routes productpage-v1-1.default

Ctrl-C stops everything.
`, page, apiURL, consoleURL(apiURL), logs, env)
}

// gatewayYAML exposes the product page on the ingress, as Bookinfo's gateway sample does.
func gatewayYAML(port string) string {
	return strings.ReplaceAll(`apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: bookinfo-gateway
  namespace: default
spec:
  selector:
    istio: ingressgateway
  servers:
  - port: {number: PORT, name: http, protocol: HTTP}
    hosts: ["*"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: bookinfo
  namespace: default
spec:
  hosts: ["*"]
  gateways: [bookinfo-gateway]
  http:
  - match:
    - uri: {exact: /productpage}
    - uri: {prefix: /static}
    - uri: {exact: /login}
    - uri: {exact: /logout}
    - uri: {prefix: /api/v1/products}
    route:
    - destination:
        host: productpage
        port: {number: 9080}
`, "PORT", port)
}

var plain = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil}}

func get(url string) error {
	resp, err := plain.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: HTTP %d", url, resp.StatusCode)
	}
	return nil
}

func getPage(url string) error {
	resp, err := plain.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "Reviews served by") {
		return fmt.Errorf("GET %s: HTTP %d", url, resp.StatusCode)
	}
	return nil
}

// errInterrupted is the demo being stopped while it starts.
var errInterrupted = errors.New("interrupted")

// waitFor polls check until it passes, the bound passes, ctx ends or a process dies.
func waitFor(ctx context.Context, sup *supervisor, bound time.Duration, what string, check func() error) error {
	deadline := time.Now().Add(bound)
	for {
		err := check()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("waiting %s for %s: %w (logs: %s)", bound, what, err, sup.logs)
		}
		select {
		case <-ctx.Done():
			return errInterrupted
		case d := <-sup.died:
			return fmt.Errorf("%s exited while starting (%v); its log: %s", d.name, d.err, d.log)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// load requests the app's page every 250 ms until ctx ends.
func load(ctx context.Context, url string, get func(string) error) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_ = get(url)
		}
	}
}

// temperatureGatewayYAML exposes the temperature API on the ingress.
func temperatureGatewayYAML(port string) string {
	return strings.ReplaceAll(`apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: temperature-gateway, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: PORT, name: http, protocol: HTTP}
    hosts: ["*"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: temperature, namespace: default}
spec:
  hosts: ["*"]
  gateways: [temperature-gateway]
  http:
  - route:
    - destination: {host: temperature, port: {number: 9080}}
    # No retries at the edge, so that the converter's failures show.
    retries: {attempts: 0}
`, "PORT", port)
}

func printTemperature(w io.Writer, url, apiURL, logs string, proxyless bool) {
	env := ""
	if apiURL != "http://127.0.0.1:15014" {
		env = "  export WEFT_CONTROL_PLANE=" + apiURL + "\n"
	}
	how := "each with a sidecar."
	if proxyless {
		how = "with no sidecar:\nproxyless gRPC apps, grpc-go's own xDS client on weft's control plane, calling\nthe converters over mTLS (DestinationRule ISTIO_MUTUAL, PeerAuthentication STRICT)."
	}
	fmt.Fprintf(w, `
weft demo is running: the temperature API calling a gRPC converter (v1, and
v2: a canary that fails 30%% of calls with UNAVAILABLE), %s

  Temperature API (through the ingress gateway):  %s
  Control plane API:                              %s
  Console (graph, traces, config):                %s
  Logs of every process:                          %s

Try, in another terminal:
%s  curl -si '%s'        (x-converter says which version answered)
  go run ./cmd/weft apply -f docs/examples/temperature/converter-subsets.yaml
  go run ./cmd/weft apply -f docs/examples/temperature/converter-canary.yaml   (80%% to v1, 20%% to v2)
  go run ./cmd/weft apply -f docs/examples/temperature/converter-v2.yaml       (all calls to v2: some fail)
  go run ./cmd/weft apply -f docs/examples/temperature/converter-retries.yaml  (retries on UNAVAILABLE: none fail)
  go run ./cmd/weft apply -f docs/examples/temperature/converter-abort.yaml    (gRPC fault: status UNAVAILABLE)
  go run ./cmd/weft apply -f docs/examples/temperature/converter-timeout.yaml  (2 s gRPC delay, 0.5 s timeout at the gateway)

Ctrl-C stops everything.
`, how, url, apiURL, consoleURL(apiURL), logs, env, url)
}

// consoleURL is the console's URL beside the API at apiURL (port 20001).
func consoleURL(apiURL string) string { return strings.Replace(apiURL, ":15014", ":20001", 1) + "/" }
