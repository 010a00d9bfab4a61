package dataplane

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"testing"

	"golang.org/x/net/http2"
)

// TestRegistryOnly: with virtualOutbound pointing at BlackHoleCluster,
// requests to hosts no listener knows get 502 (HTTP/1.1 and h2c) and
// CONNECT tunnels to them are closed, while known services still work.
func TestRegistryOnly(t *testing.T) {
	ip := randIP()
	outside := startApp(t, randIP(), appHandler("outside"))
	inside := startApp(t, randIP(), appHandler("inside"))
	client := newTestDataplane(t, ModeSidecar, ip)
	port := inside.Port()
	svc := fmt.Sprintf("outbound|%d||reviews.default.svc.cluster.local", port)
	apply(t, client, clusterType, append(specialClusters(), edsCluster(t, svc, false))...)
	apply(t, client, endpointType, cla(svc, false, inside))
	vo := outboundListener(t, ip)
	vo.FilterChains = nil
	vo.DefaultFilterChain = tcpChain(t, blackHoleCluster)
	apply(t, client, listenerType, vo, httpListener(t, port, fmt.Sprint(port), false))
	m := &mesh{clientIP: ip, port: port}
	apply(t, client, routeType, m.routes())
	c := m.proxyClient()

	if code, body, _ := get(t, c, fmt.Sprintf("http://reviews:%d/api/x", port)); code != 200 || body[:6] != "inside" {
		t.Fatalf("a known service: %d %q", code, body)
	}
	if code, _, h := get(t, c, "http://"+outside.String()+"/"); code != 502 || h.Get("x-weft-response-flags") != "UH" {
		t.Fatalf("an unknown host under REGISTRY_ONLY: %d flags %q, want 502 UH", code, h.Get("x-weft-response-flags"))
	}
	dial := connectDialer(netip.AddrPortFrom(ip, testOutbound))
	h2c := &http.Client{Transport: &http2.Transport{AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, _, addr string, _ *tls.Config) (net.Conn, error) { return dial(ctx, addr) }}}
	if resp, err := h2c.Get("http://" + outside.String() + "/"); err == nil {
		resp.Body.Close()
		t.Fatalf("an h2c tunnel to an unknown host must be closed, got %d", resp.StatusCode)
	}
}
