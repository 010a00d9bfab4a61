package cli

import (
	"context"
	"fmt"
	"log/slog"
	"net"

	"github.com/weft-mesh/weft/internal/demo/bookinfo"
)

// runBookinfo runs one Bookinfo app on $POD_IP:$PORT (the demo starts it under `weft run`).
func runBookinfo(ctx context.Context, env *Env) error {
	fs := newFlags(env, "bookinfo")
	fs.Usage = func() { fmt.Fprintln(env.Stderr, "usage: weft bookinfo productpage|details|reviews|ratings") }
	if err := fs.Parse(env.Args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errUsage
	}
	ip, port := env.Getenv("POD_IP"), env.Getenv("PORT")
	if ip == "" {
		ip = "127.0.0.1"
	}
	if port == "" {
		port = "9080"
	}
	version := env.Getenv("SERVICE_VERSION")
	if version == "" {
		version = "v1"
	}
	cfg := bookinfo.DefaultConfig(version, env.Getenv("POD_NAME"))
	cfg.Logger = slog.New(slog.NewTextHandler(env.Stderr, nil))
	return bookinfo.Run(ctx, fs.Arg(0), net.JoinHostPort(ip, port), cfg)
}
