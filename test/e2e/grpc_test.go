package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// connectDialer dials the sidecar's capture port and opens an HTTP CONNECT
// tunnel to the mesh address, as an app behind HTTP_PROXY does.
func connectDialer(sidecar string) func(context.Context, string) (net.Conn, error) {
	return func(ctx context.Context, target string) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", sidecar)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target)
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("CONNECT %s via %s: %w", target, sidecar, err)
		}
		if resp.StatusCode != 200 {
			c.Close()
			return nil, fmt.Errorf("CONNECT %s via %s: %s", target, sidecar, resp.Status)
		}
		if br.Buffered() > 0 {
			c.Close()
			return nil, fmt.Errorf("CONNECT %s: unexpected bytes after the 200", target)
		}
		return c, nil
	}
}

// TestGRPCThroughSidecars sends unary and streaming gRPC calls over HTTP/2
// through a client sidecar and the server's sidecar.
func TestGRPCThroughSidecars(t *testing.T) {
	b := newBlock(t)
	dir := t.TempDir()
	echo := filepath.Join(dir, "grpcecho")
	if out, err := exec.Command("go", "build", "-o", echo, "./testdata/grpcecho").CombinedOutput(); err != nil {
		t.Fatalf("building grpcecho: %v\n%s", err, out)
	}
	xds := b.controlPlaneIP() + ":15010"
	start(t, "control-plane", "--data-dir", t.TempDir(), "--http-address", b.controlPlaneIP()+":15014", "--secure-xds-address", b.controlPlaneIP()+":15012",
		"--otlp-grpc-address", b.controlPlaneIP()+":4317", "--otlp-http-address", b.controlPlaneIP()+":4318")
	waitHTTP(t, b.api()+"/api/v1/proxies", 30*time.Second)
	startJoined(t, b.api(), "default", "echo", "run", "--name", "echo-v1-1", "--namespace", "default", "--service", "echo", "--version", "v1",
		"--port", "grpc:50051", "--ip", b.ip(1, 1), "--xds-address", xds, "--", echo)
	client := b.ip(1, 2)
	startJoined(t, b.api(), "default", "client", append([]string{"proxy", "--name", "client-v1-1", "--namespace", "default", "--service", "client", "--version", "v1",
		"--port", "http:9000", "--ip", client, "--xds-address", xds}, testIsTheApp()...)...)
	waitHTTP(t, "http://"+client+":15021/healthz/ready", 30*time.Second)

	conn, err := grpc.NewClient("passthrough:///echo:50051",
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(connectDialer(client+":15001")))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	hc := healthpb.NewHealthClient(conn)

	eventually(t, 30*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		var md metadata.MD
		resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: "weft"}, grpc.Header(&md))
		if err != nil {
			return err
		}
		if resp.Status != healthpb.HealthCheckResponse_SERVING || len(md.Get("pod")) == 0 || md.Get("pod")[0] != "echo-v1-1" {
			return fmt.Errorf("unexpected answer %v from %v", resp.Status, md.Get("pod"))
		}
		return nil
	})
	for range 20 {
		if _, err := hc.Check(context.Background(), &healthpb.HealthCheckRequest{Service: "weft"}); err != nil {
			t.Fatalf("unary call through the sidecars: %v", err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := hc.Watch(ctx, &healthpb.HealthCheckRequest{Service: "weft"})
	if err != nil {
		t.Fatalf("streaming call: %v", err)
	}
	first, err := stream.Recv()
	if err != nil {
		t.Fatalf("streaming call: first message: %v", err)
	}
	if first.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("streaming call: got %v", first.Status)
	}
	_, err = hc.Check(context.Background(), &healthpb.HealthCheckRequest{Service: "unknown"})
	if status.Code(err) != codes.NotFound {
		t.Fatalf("want NotFound for an unknown service (gRPC status must cross the proxies), got %v", err)
	}
}
