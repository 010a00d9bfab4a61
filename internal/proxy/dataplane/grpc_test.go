package dataplane

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"testing"
	"time"

	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"golang.org/x/net/http2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// bufConn reads what a bufio.Reader already buffered first.
type bufConn struct {
	net.Conn
	br *bufio.Reader
}

func (c *bufConn) Read(p []byte) (int, error) { return c.br.Read(p) }

// connectDialer dials through the capture port with CONNECT, as an app
// honouring HTTP_PROXY does for a tunnel.
func connectDialer(capture netip.AddrPort) func(context.Context, string) (net.Conn, error) {
	return func(ctx context.Context, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, "tcp", capture.String())
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", addr, addr)
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != 200 {
			c.Close()
			return nil, fmt.Errorf("CONNECT %s: %v %v", addr, resp, err)
		}
		return &bufConn{Conn: c, br: br}, nil
	}
}

// grpcMesh starts a gRPC app behind a server sidecar and a client sidecar
// whose cluster for it speaks h2c (upstreamH2) or HTTP/1.1; it returns the
// capture address and the service authority.
func grpcMesh(t *testing.T, app http.Handler, grpcApp *grpc.Server, upstreamH2 bool) (netip.AddrPort, string) {
	clientIP, serverIP := randIP(), randIP()
	ln, err := net.Listen("tcp", netip.AddrPortFrom(serverIP, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	appAddr := netip.MustParseAddrPort(ln.Addr().String())
	if grpcApp != nil {
		go grpcApp.Serve(ln)
		t.Cleanup(grpcApp.Stop)
	} else {
		ln.Close()
		appAddr = startApp(t, serverIP, app)
	}
	port := appAddr.Port()
	client, server := newTestDataplane(t, ModeSidecar, clientIP), newTestDataplane(t, ModeSidecar, serverIP)
	inbound := fmt.Sprintf("inbound|%d||", port)
	apply(t, server, clusterType, append(specialClusters(), staticCluster(t, inbound, appAddr, upstreamH2))...)
	apply(t, server, listenerType, inboundListener(t, serverIP, port))
	svc := fmt.Sprintf("outbound|%d||grpc.default.svc.cluster.local", port)
	apply(t, client, clusterType, append(specialClusters(), edsCluster(t, svc, upstreamH2))...)
	apply(t, client, endpointType, cla(svc, true, appAddr))
	apply(t, client, listenerType, outboundListener(t, clientIP), httpListener(t, port, fmt.Sprint(port), false))
	authority := fmt.Sprintf("grpc:%d", port)
	apply(t, client, routeType, &route.RouteConfiguration{Name: fmt.Sprint(port), VirtualHosts: []*route.VirtualHost{
		{Name: "grpc", Domains: []string{authority}, Routes: []*route.Route{prefixRoute("default", "/", svc)}}}})
	return netip.AddrPortFrom(clientIP, testOutbound), authority
}

func TestGRPCThroughConnectTunnel(t *testing.T) {
	gs := grpc.NewServer()
	hs := health.NewServer()
	healthpb.RegisterHealthServer(gs, hs)
	capture, authority := grpcMesh(t, nil, gs, true)

	conn, err := grpc.NewClient("passthrough:///"+authority, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(connectDialer(capture)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	hc := healthpb.NewHealthClient(conn)
	resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("unary Check: %v %v", resp, err)
	}
	if _, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: "unknown"}); err == nil {
		t.Fatal("Check of an unknown service: want the NotFound status carried in trailers")
	}
	// Server streaming: the status, then its change.
	stream, err := hc.Watch(ctx, &healthpb.HealthCheckRequest{Service: "svc"})
	if err != nil {
		t.Fatal(err)
	}
	hs.SetServingStatus("svc", healthpb.HealthCheckResponse_SERVING)
	seen := map[healthpb.HealthCheckResponse_ServingStatus]bool{}
	for !seen[healthpb.HealthCheckResponse_SERVING] {
		m, err := stream.Recv()
		if err != nil {
			t.Fatalf("Watch: %v", err)
		}
		seen[m.GetStatus()] = true
	}
	hs.SetServingStatus("svc", healthpb.HealthCheckResponse_NOT_SERVING)
	if m, err := stream.Recv(); err != nil || m.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("Watch after a change: %v %v", m, err)
	}
}

// TestH2CToHTTP1Upstream sends h2c (prior knowledge) inside a CONNECT
// tunnel to a service whose upstream speaks HTTP/1.1.
func TestH2CToHTTP1Upstream(t *testing.T) {
	capture, authority := grpcMesh(t, appHandler("h1"), nil, false)
	dial := connectDialer(capture)
	c := &http.Client{Transport: &http2.Transport{AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, _, addr string, _ *tls.Config) (net.Conn, error) { return dial(ctx, addr) }}}
	resp, err := c.Get("http://" + authority + "/p?q=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body [256]byte
	n, _ := resp.Body.Read(body[:])
	if resp.StatusCode != 200 || resp.ProtoMajor != 2 || string(body[:n]) != "h1 "+authority+" /p?q=1" {
		t.Fatalf("got %s %d %q", resp.Proto, resp.StatusCode, body[:n])
	}
}

// TestHTTP1ToH2CUpstream sends HTTP/1.1 through the capture port to a
// service whose upstream speaks h2c: the app must see HTTP/2.
func TestHTTP1ToH2CUpstream(t *testing.T) {
	capture, authority := grpcMesh(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s", r.Proto, r.URL.Path)
	}), nil, true)
	c := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: capture.String()})}}
	for i := range 3 {
		code, body, _ := get(t, c, fmt.Sprintf("http://%s/h1-%d", authority, i))
		if code != 200 || body != fmt.Sprintf("HTTP/2.0 /h1-%d", i) {
			t.Fatalf("request %d: got %d %q", i, code, body)
		}
	}
}
