package cli

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"

	"github.com/weft-mesh/weft/internal/demo"
)

// runDemo runs Bookinfo with sidecars, an ingress gateway and load.
func runDemo(ctx context.Context, env *Env) error {
	fs := newFlags(env, "demo")
	app := fs.String("app", demo.AppBookinfo, "which demo: bookinfo, or temperature (an HTTP API calling a gRPC converter)")
	proxyless := fs.Bool("proxyless", false, "with --app temperature: run the API and the converters with no sidecar, as proxyless gRPC apps (grpc-go's xDS client; weft run --proxyless)")
	noLoad := fs.Bool("no-load", false, "do not send the light background load")
	ipBase := fs.String("ip-base", "127.0.1.0", "workloads get the next addresses as pod IPs, one per instance")
	ingress := fs.String("ingress", "127.0.0.1:8080", "address of the ingress gateway")
	cpIP := fs.String("control-plane-ip", "127.0.0.1", "address of the control plane (ports 15010 and 15014)")
	dataDir := fs.String("data-dir", "", "keep config and logs here (default: a temporary directory)")
	var replicas []string
	fs.Func("replicas", "run more instances of a workload: `WORKLOAD=N` (reviews-v2=2; repeatable, or comma-separated)", func(v string) error {
		replicas = append(replicas, strings.Split(v, ",")...)
		return nil
	})
	otlpEndpoint := fs.String("otlp-endpoint", "", `where the sidecars and the gateway send their spans: host:port (OTLP/gRPC) or http://host:port (OTLP/HTTP); default the control plane's receiver`)
	otlpForward := fs.String("otlp-forward", "", `the control plane forwards every span it receives to this OTLP collector (Jaeger…): host:port (OTLP/gRPC) or http://host:port (OTLP/HTTP)`)
	verbose := fs.Bool("verbose", false, "print every process's output to stderr, prefixed by its name, instead of to log files")
	if err := fs.Parse(env.Args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	base, err := netip.ParseAddr(*ipBase)
	if err != nil {
		return fmt.Errorf("--ip-base: %w", err)
	}
	reps := map[string]int{}
	for _, r := range replicas {
		name, num, ok := strings.Cut(strings.TrimSpace(r), "=")
		n, err := strconv.Atoi(num)
		if !ok || name == "" || err != nil {
			return fmt.Errorf("--replicas %q: want WORKLOAD=N, such as reviews-v2=2", r)
		}
		reps[name] = n
	}
	return demo.Run(ctx, demo.Options{
		Replicas: reps,
		App:      *app, Proxyless: *proxyless, NoLoad: *noLoad, IPBase: base, Ingress: *ingress, ControlPlaneIP: *cpIP, DataDir: *dataDir,
		OTLPEndpoint: *otlpEndpoint, OTLPForward: *otlpForward,
		Verbose: *verbose, Out: env.Stdout, Stderr: env.Stderr, Logger: slog.New(slog.NewTextHandler(env.Stderr, nil)),
	})
}
