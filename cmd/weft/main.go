// Command weft is the weft service mesh: control plane, proxy, gateway, demo and CLI.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/weft-mesh/weft/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
