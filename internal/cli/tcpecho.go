package cli

import (
	"context"
	"fmt"
	"net"
	"strings"

	"github.com/weft-mesh/weft/internal/demo/tcpecho"
)

// runTCPEcho runs Istio's tcp-echo sample server on $POD_IP (weft run sets
// it): weft tcp-echo PORTS PREFIX, as the sample's image takes its args.
func runTCPEcho(ctx context.Context, env *Env) error {
	fs := newFlags(env, "tcp-echo")
	fs.Usage = func() { fmt.Fprintln(env.Stderr, "usage: weft tcp-echo PORT[,PORT...] PREFIX") }
	if err := fs.Parse(env.Args); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		fs.Usage()
		return errUsage
	}
	ip := env.Getenv("POD_IP")
	if ip == "" {
		ip = "127.0.0.1"
	}
	var addrs []string
	for _, p := range strings.Split(fs.Arg(0), ",") {
		addrs = append(addrs, net.JoinHostPort(ip, strings.TrimSpace(p)))
	}
	return tcpecho.Run(ctx, addrs, fs.Arg(1))
}
