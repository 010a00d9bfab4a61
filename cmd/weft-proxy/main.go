// Command weft-proxy is weft's data plane: the sidecar (weft-proxy proxy,
// weft-proxy run), the gateway and the istio-init iptables set-up. The weft
// CLI execs it for those commands; it links none of the control plane.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/weft-mesh/weft/internal/proxycli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := proxycli.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
