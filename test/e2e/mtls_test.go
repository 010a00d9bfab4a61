package e2e

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/weft-mesh/weft/internal/proxy/certs"
	"github.com/weft-mesh/weft/internal/spiffe"
)

// TestMutualTLSWithTheControlPlaneCA runs a real control plane with only
// the authenticated :15012: two proxies' certificate clients join with
// tokens from `weft token create`, handshake mTLS with each other, and one
// gets its config over ADS on :15012 with its certificate.
func TestMutualTLSWithTheControlPlaneCA(t *testing.T) {
	b := newBlock(t)
	secure := b.controlPlaneIP() + ":15012"
	start(t, "control-plane", "--data-dir", t.TempDir(), "--xds-address", "off", "--http-address", b.controlPlaneIP()+":15014",
		"--secure-xds-address", secure, "--otlp-grpc-address", "off", "--otlp-http-address", "off")
	waitHTTP(t, b.api()+"/api/v1/proxies", 30*time.Second)

	join := func(id spiffe.ID) *certs.Client {
		t.Helper()
		tok := joinToken(t, b.api(), id.Namespace, id.ServiceAccount)
		c, err := certs.New(certs.Options{Address: secure, Identity: id, Token: tok})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := c.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		return c
	}
	productpage, reviews := spiffe.New("default", "bookinfo-productpage"), spiffe.New("default", "bookinfo-reviews")
	pp, rv := join(productpage), join(reviews)

	lis, err := tls.Listen("tcp", b.ip(1, 1)+":0", rv.ServerTLSConfig(func(id spiffe.ID) error { return nil }))
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	go func() {
		conn, err := lis.Accept()
		if err == nil {
			defer conn.Close()
			io.Copy(conn, conn)
		}
	}()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", lis.Addr().String(),
		pp.ClientTLSConfig(certs.SNI(9080, "", "reviews.default.svc.cluster.local"), []spiffe.ID{reviews}))
	if err != nil {
		t.Fatalf("mTLS handshake: %v", err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	conn.Write([]byte("ping"))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(conn, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo over mTLS: %q %v", buf, err)
	}

	// ADS on :15012 with the proxy's certificate.
	gc, err := grpc.NewClient(secure, rv.DialOption())
	if err != nil {
		t.Fatal(err)
	}
	defer gc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stream, err := discovery.NewAggregatedDiscoveryServiceClient(gc).StreamAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	md, _ := structpb.NewStruct(map[string]any{"NAMESPACE": "default", "SERVICE_ACCOUNT": "bookinfo-reviews",
		"WORKLOAD_NAME": "reviews-v1-1", "INSTANCE_IPS": b.ip(1, 1)})
	node := &core.Node{Id: "sidecar~" + b.ip(1, 1) + "~reviews-v1-1.default~default.svc.cluster.local", Metadata: md}
	if err := stream.Send(&discovery.DiscoveryRequest{Node: node, TypeUrl: "type.googleapis.com/envoy.config.listener.v3.Listener"}); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatalf("ADS over :15012: %v", err)
	}
}
