package cli

import (
	"context"
	"fmt"
	"log/slog"
	"net"

	"github.com/weft-mesh/weft/internal/demo/temperature"
)

// runTemperature runs one app of the gRPC demo on $POD_IP:$PORT (the demo
// starts it under `weft run`, or `weft run --proxyless` with --proxyless):
// weft temperature api|converter [--fail-percent N] [--proxyless].
func runTemperature(ctx context.Context, env *Env) error {
	fs := newFlags(env, "temperature")
	fail := fs.Float64("fail-percent", 0, "converter: percent of calls answered UNAVAILABLE")
	converter := fs.String("converter", "dns:///converter:50051", "api: the converter's gRPC target")
	proxyless := fs.Bool("proxyless", false, "grpc-go's own xDS client, no sidecar (run under weft run --proxyless): "+
		"the converter is an xDS-managed server, the api dials --converter xds:///converter.NS.svc.cluster.local:50051; both with xDS credentials")
	fs.Usage = func() {
		fmt.Fprintln(env.Stderr, "usage: weft temperature api|converter [--fail-percent N] [--converter TARGET] [--proxyless]")
	}
	args, err := parseInterspersed(fs, env.Args)
	if err != nil {
		return err
	}
	if len(args) != 1 || (args[0] != "api" && args[0] != "converter") {
		fs.Usage()
		return errUsage
	}
	if *fail < 0 || *fail > 100 {
		return fmt.Errorf("--fail-percent %v: want 0 to 100", *fail)
	}
	ip, port := env.Getenv("POD_IP"), env.Getenv("PORT")
	if ip == "" {
		ip = "127.0.0.1"
	}
	logger := slog.New(slog.NewTextHandler(env.Stderr, nil))
	if args[0] == "converter" {
		if port == "" {
			port = "50051"
		}
		version := env.Getenv("SERVICE_VERSION")
		if version == "" {
			version = "v1"
		}
		return temperature.RunConverter(ctx, net.JoinHostPort(ip, port), temperature.ConverterOptions{
			Version: version, Instance: env.Getenv("POD_NAME"), FailPercent: *fail, Proxyless: *proxyless, Logger: logger})
	}
	if port == "" {
		port = "9080"
	}
	return temperature.RunAPI(ctx, net.JoinHostPort(ip, port), temperature.APIOptions{Converter: *converter, Proxyless: *proxyless, Logger: logger})
}
