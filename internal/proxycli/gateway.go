package proxycli

import (
	"context"

	"github.com/weft-mesh/weft/internal/proxy"
)

var gatewayDefaults = proxyDefaults{
	mode: proxy.ModeRouter, name: "istio-ingressgateway", namespace: "istio-system",
	labels: "istio=ingressgateway", ip: "127.0.0.1",
}

func runGateway(ctx context.Context, env *Env) error {
	return runProxyWith(ctx, env, "gateway", gatewayDefaults)
}
