package ca

import (
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
	pb "istio.io/api/security/v1alpha1"

	"github.com/weft-mesh/weft/internal/controlplane/token"
	"github.com/weft-mesh/weft/internal/spiffe"
)

// fakeADS answers each request with an empty response of its type.
type fakeADS struct {
	discovery.UnimplementedAggregatedDiscoveryServiceServer
}

func (fakeADS) StreamAggregatedResources(s discovery.AggregatedDiscoveryService_StreamAggregatedResourcesServer) error {
	for {
		req, err := s.Recv()
		if err != nil {
			return nil
		}
		if err := s.Send(&discovery.DiscoveryResponse{TypeUrl: req.GetTypeUrl(), VersionInfo: "1", Nonce: "n"}); err != nil {
			return err
		}
	}
}

// reservedID is an identity the test server never issues.
var reservedID = spiffe.New("weft-system", "weft-admin")

type harness struct {
	ca     *CA
	tokens *token.Issuer
	srv    *Server
	addr   string
}

func startServer(t *testing.T) *harness {
	t.Helper()
	authority, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	tokens := token.NewWithKey([]byte("0123456789abcdef0123456789abcdef"), nil)
	srv, err := NewServer(ServerOptions{CA: authority, Tokens: tokens, Reserved: []spiffe.ID{reservedID},
		RegisterXDS: func(g *grpc.Server) { discovery.RegisterAggregatedDiscoveryServiceServer(g, fakeADS{}) }})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, lis) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return &harness{ca: authority, tokens: tokens, srv: srv, addr: lis.Addr().String()}
}

// conn dials the server as "istiod", verifying its certificate against the
// bundle, with cert as the client certificate when not nil.
func (h *harness) conn(t *testing.T, cert *tls.Certificate) *grpc.ClientConn {
	t.Helper()
	cfg := &tls.Config{RootCAs: h.ca.Roots(), ServerName: "istiod"}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	conn, err := grpc.NewClient(h.addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// create calls CreateCertificate for a CSR of id, with tok (if not empty)
// and cert; it returns the key pair on success.
func (h *harness) create(t *testing.T, id spiffe.ID, tok string, cert *tls.Certificate) (*tls.Certificate, []string, error) {
	t.Helper()
	csr, key := csrFor(t, id.String())
	ctx := context.Background()
	if tok != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok)
	}
	resp, err := pb.NewIstioCertificateServiceClient(h.conn(t, cert)).CreateCertificate(ctx,
		&pb.IstioCertificateRequest{Csr: string(csr), ValidityDuration: 3600})
	if err != nil {
		return nil, nil, err
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key.(*ecdsa.PrivateKey))
	chain := resp.GetCertChain()
	pair, err := tls.X509KeyPair([]byte(strings.Join(chain[:len(chain)-1], "")), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
	if err != nil {
		t.Fatal(err)
	}
	return &pair, chain, nil
}

func wantCode(t *testing.T, what string, err error, code codes.Code, text string) {
	t.Helper()
	if status.Code(err) != code || !strings.Contains(err.Error(), text) {
		t.Errorf("%s: error %v, want %s containing %q", what, err, code, text)
	}
}

func TestCreateCertificate(t *testing.T) {
	h := startServer(t)
	idA, idB := spiffe.New("ns-a", "sa"), spiffe.New("ns-b", "sa")
	tokA, _ := h.tokens.Issue("ns-a", "sa", time.Hour)

	cert, chain, err := h.create(t, idA, tokA, nil)
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := spiffe.FromCert(cert.Leaf); id != idA {
		t.Errorf("issued for %v, want %v", id, idA)
	}
	if d := cert.Leaf.NotAfter.Sub(cert.Leaf.NotBefore); d != time.Hour+time.Minute {
		t.Errorf("validity %s, want the 1h asked for (+1m back-dating)", d)
	}
	if last := chain[len(chain)-1]; last != string(h.ca.TrustBundle()) {
		t.Errorf("last cert_chain element is not the trust bundle")
	}

	// Renewal with the certificate alone.
	if _, _, err := h.create(t, idA, "", cert); err != nil {
		t.Errorf("renewal with the client certificate: %v", err)
	}
	// A token for ns-a, a CSR for ns-b: refused and counted.
	_, _, err = h.create(t, idB, tokA, nil)
	wantCode(t, "CSR for another identity", err, codes.PermissionDenied,
		"CSR asks for spiffe://cluster.local/ns/ns-b/sa/sa but the caller is spiffe://cluster.local/ns/ns-a/sa/sa")
	if h.ca.RefusedCSRs() != 1 {
		t.Errorf("RefusedCSRs = %d, want 1", h.ca.RefusedCSRs())
	}
	// The certificate of ns-a asking for ns-b.
	_, _, err = h.create(t, idB, "", cert)
	wantCode(t, "renewal for another identity", err, codes.PermissionDenied, "but the caller is spiffe://cluster.local/ns/ns-a/sa/sa")

	// A token for a reserved identity yields nothing.
	tokAdmin, _ := h.tokens.Issue(reservedID.Namespace, reservedID.ServiceAccount, time.Hour)
	_, _, err = h.create(t, reservedID, tokAdmin, nil)
	wantCode(t, "reserved identity", err, codes.PermissionDenied, "spiffe://cluster.local/ns/weft-system/sa/weft-admin is reserved")
	if h.ca.RefusedCSRs() != 3 { // with the renewal for another identity
		t.Errorf("RefusedCSRs = %d, want 3", h.ca.RefusedCSRs())
	}

	other := token.NewWithKey([]byte("another key, another control pl."), nil)
	forged, _ := other.Issue("ns-a", "sa", time.Hour)
	expiredIssuer := token.NewWithKey([]byte("0123456789abcdef0123456789abcdef"), func() time.Time { return time.Now().Add(-2 * time.Hour) })
	expired, _ := expiredIssuer.Issue("ns-a", "sa", time.Hour)
	for _, tc := range []struct{ name, tok, want string }{
		{"no credentials", "", "no credentials"},
		{"garbage token", "hello", "malformed join token"},
		{"forged token", forged, "signature is not valid"},
		{"expired token", expired, "join token expired"},
	} {
		_, _, err := h.create(t, idA, tc.tok, nil)
		wantCode(t, tc.name, err, codes.Unauthenticated, tc.want)
	}
	if h.srv.AuthenticationFailures() != 4 {
		t.Errorf("AuthenticationFailures = %d, want 4", h.srv.AuthenticationFailures())
	}
}

func node(t *testing.T, ns, sa string) *core.Node {
	md, err := structpb.NewStruct(map[string]any{"NAMESPACE": ns, "SERVICE_ACCOUNT": sa, "WORKLOAD_NAME": "reviews-v1"})
	if err != nil {
		t.Fatal(err)
	}
	return &core.Node{Id: "sidecar~127.0.1.7~reviews-v1." + ns + "~" + ns + ".svc.cluster.local", Metadata: md}
}

// adsOnce opens an ADS stream, sends one request with n and returns the
// first answer's error.
func adsOnce(t *testing.T, conn *grpc.ClientConn, n *core.Node) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := discovery.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	if err != nil {
		return err
	}
	// io.EOF from Send means the server already ended the stream (a
	// refusal can come before the request is sent): Recv has its status.
	if err := stream.Send(&discovery.DiscoveryRequest{Node: n, TypeUrl: "type.googleapis.com/envoy.config.cluster.v3.Cluster"}); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	_, err = stream.Recv()
	return err
}

func TestSecureXDS(t *testing.T) {
	h := startServer(t)
	tok, _ := h.tokens.Issue("default", "bookinfo-reviews", time.Hour)
	cert, _, err := h.create(t, spiffe.New("default", "bookinfo-reviews"), tok, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := adsOnce(t, h.conn(t, cert), node(t, "default", "bookinfo-reviews")); err != nil {
		t.Errorf("proxy with its own identity: %v", err)
	}
	wantCode(t, "no client certificate", adsOnce(t, h.conn(t, nil), node(t, "default", "bookinfo-reviews")),
		codes.Unauthenticated, "needs a client certificate")
	wantCode(t, "another service account", adsOnce(t, h.conn(t, cert), node(t, "default", "bookinfo-ratings")),
		codes.PermissionDenied, `claims namespace "default" and service account "bookinfo-ratings", but its certificate is for spiffe://cluster.local/ns/default/sa/bookinfo-reviews`)
	wantCode(t, "another namespace", adsOnce(t, h.conn(t, cert), node(t, "prod", "bookinfo-reviews")),
		codes.PermissionDenied, `claims namespace "prod"`)
}

func TestServingCertificate(t *testing.T) {
	h := startServer(t)
	conn, err := tls.Dial("tcp", h.addr, &tls.Config{RootCAs: h.ca.Roots(), ServerName: "weft-control-plane", NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	st := conn.ConnectionState()
	leaf := st.PeerCertificates[0]
	if id, _ := spiffe.FromCert(leaf); id != ControlPlaneIdentity {
		t.Errorf("identity %v, want %v", id, ControlPlaneIdentity)
	}
	if len(leaf.IPAddresses) == 0 || !leaf.IPAddresses[0].Equal(net.IPv4(127, 0, 0, 1)) {
		t.Errorf("IP SANs %v", leaf.IPAddresses)
	}
	for _, name := range []string{"localhost", "istiod", "weftd.weft-system.svc", "weftd.weft-system.svc.cluster.local"} {
		if err := leaf.VerifyHostname(name); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if last := st.PeerCertificates[len(st.PeerCertificates)-1]; !last.Equal(h.ca.Certificate()) {
		t.Error("the chain does not end with the trust anchor")
	}
}
