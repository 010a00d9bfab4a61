package cli

import (
	"context"

	"github.com/weft-mesh/weft/internal/proxy"
)

var gatewayDefaults = proxyDefaults{
	mode: proxy.ModeRouter, name: "istio-ingressgateway", namespace: "istio-system",
	labels: "istio=ingressgateway", ip: "127.0.0.1",
}

func runGateway(ctx context.Context, env *Env) error {
	fs := newFlags(env, "gateway")
	f := addProxyFlags(fs, gatewayDefaults)
	if err := parseFlagsNoArgs(fs, env.Args); err != nil {
		return err
	}
	opts, err := f.options(env)
	if err != nil {
		return err
	}
	return proxy.Run(ctx, opts)
}
