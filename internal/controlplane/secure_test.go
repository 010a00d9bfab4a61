package controlplane

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
	pb "istio.io/api/security/v1alpha1"

	"github.com/weft-mesh/weft/internal/config"
	"github.com/weft-mesh/weft/internal/controlplane/api"
	"github.com/weft-mesh/weft/internal/controlplane/authz"
	"github.com/weft-mesh/weft/internal/controlplane/ca"
	"github.com/weft-mesh/weft/internal/controlplane/xdsserver"
)

// TestSecureXDSOnly runs the control plane with plaintext xDS off: a proxy
// gets a join token from the API, its certificate from :15012, then its
// config over ADS on :15012 with that certificate.
func TestSecureXDSOnly(t *testing.T) {
	dataDir := t.TempDir()
	secureAddr := make(chan net.Addr, 1)
	ready := make(chan net.Addr, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{DataDir: dataDir, XDSAddress: "off", SecureXDSAddress: "127.0.0.1:0", HTTPAddress: "127.0.0.1:0",
			OTLPGRPCAddress: "off", OTLPHTTPAddress: "off", Debounce: time.Millisecond,
			SecureReady: func(a net.Addr) { secureAddr <- a },
			Ready: func(x, h net.Addr) {
				if x != nil {
					t.Errorf("plaintext xDS is off but bound %v", x)
				}
				ready <- h
			}})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	var httpAddr, addr net.Addr
	select {
	case httpAddr = <-ready:
		addr = <-secureAddr
	case err := <-done:
		t.Fatalf("Run: %v", err)
	}

	creds, err := authz.ReadCredentials(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := api.NewClientWith("http://"+httpAddr.String(), api.ClientOptions{Token: creds.Token}).CreateToken(ctx, "default", "bookinfo-reviews", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	rootPEM, err := os.ReadFile(filepath.Join(dataDir, "ca", ca.RootCertFile))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(rootPEM)
	dial := func(cert *tls.Certificate) *grpc.ClientConn {
		cfg := &tls.Config{RootCAs: roots, ServerName: "weft-control-plane"}
		if cert != nil {
			cfg.Certificates = []tls.Certificate{*cert}
		}
		conn, err := grpc.NewClient(addr.String(), grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}

	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	u, _ := url.Parse("spiffe://cluster.local/ns/default/sa/bookinfo-reviews")
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{URIs: []*url.URL{u}}, key)
	cctx := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok.Token)
	resp, err := pb.NewIstioCertificateServiceClient(dial(nil)).CreateCertificate(cctx, &pb.IstioCertificateRequest{
		Csr: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr}))})
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	chain := resp.GetCertChain()
	cert, err := tls.X509KeyPair([]byte(strings.Join(chain[:len(chain)-1], "")), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
	if err != nil {
		t.Fatal(err)
	}

	sctx, scancel := context.WithTimeout(ctx, time.Minute)
	defer scancel()
	node := reviewsNode(t)
	node.Metadata.Fields["SERVICE_ACCOUNT"] = structpb.NewStringValue("bookinfo-reviews")
	stream, err := discovery.NewAggregatedDiscoveryServiceClient(dial(&cert)).StreamAggregatedResources(sctx)
	if err != nil {
		t.Fatal(err)
	}
	got := syncWildcard(t, stream, node)
	if len(got[xdsserver.ListenerType].GetResources()) == 0 {
		t.Error("no listeners over the secure port")
	}
	objs, err := api.NewClient("http://"+httpAddr.String()).Get(ctx, api.Query{Kind: "we", Name: "reviews-v2-1"})
	if err != nil || len(objs) != 1 || objs[0].Annotations[config.AnnotationAutoRegistered] != "true" {
		t.Errorf("WorkloadEntry auto-registered over the secure port = %v, %v", objs, err)
	}

	// The same proxy claiming another service account is refused.
	node.Metadata.Fields["SERVICE_ACCOUNT"] = structpb.NewStringValue("bookinfo-ratings")
	bad, err := discovery.NewAggregatedDiscoveryServiceClient(dial(&cert)).StreamAggregatedResources(sctx)
	if err != nil {
		t.Fatal(err)
	}
	bad.Send(&discovery.DiscoveryRequest{Node: node, TypeUrl: xdsserver.ClusterType})
	if _, err := bad.Recv(); status.Code(err) != codes.PermissionDenied {
		t.Errorf("another service account: %v, want PermissionDenied", err)
	}
}
