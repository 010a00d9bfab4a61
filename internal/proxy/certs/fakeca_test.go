package certs

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	pb "istio.io/api/security/v1alpha1"

	"github.com/weft-mesh/weft/internal/spiffe"
)

// fakeCA is a small stand-in for the control plane's :15012 (the proxy
// never imports the control plane): one root, IstioCertificateService over
// TLS, a join token per identity, CSR identity checks.
type fakeCA struct {
	pb.UnimplementedIstioCertificateServiceServer
	t       *testing.T
	key     *ecdsa.PrivateKey
	root    *x509.Certificate
	addr    string
	failing atomic.Bool
	issued  atomic.Int64
	refused atomic.Int64 // calls refused while failing
	// saTokens are Kubernetes service-account tokens and the identity a
	// TokenReview would map each to; lastToken is the last one presented.
	saTokens  map[string]spiffe.ID
	lastToken atomic.Value
}

func newFakeCA(t *testing.T) *fakeCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fake root"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := x509.ParseCertificate(der)
	return &fakeCA{t: t, key: key, root: root}
}

// serve starts the CA's gRPC server on a loopback port until test end.
func (f *fakeCA) serve() {
	f.t.Helper()
	srvKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := f.sign(srvKey.Public(), spiffe.New("weft-system", "weft-control-plane"), time.Hour, time.Now())
	cert := tls.Certificate{Certificate: [][]byte{leaf.Raw, f.root.Raw}, PrivateKey: srvKey}
	pool := x509.NewCertPool()
	pool.AddCert(f.root)
	g := grpc.NewServer(grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{cert},
		ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: pool})))
	pb.RegisterIstioCertificateServiceServer(g, f)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.t.Fatal(err)
	}
	f.addr = lis.Addr().String()
	go g.Serve(lis)
	f.t.Cleanup(g.Stop)
}

// sign issues a leaf for id valid for ttl from notBefore.
func (f *fakeCA) sign(pub any, id spiffe.ID, ttl time.Duration, notBefore time.Time) *x509.Certificate {
	f.t.Helper()
	n, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: n, NotBefore: notBefore.Add(-time.Minute), NotAfter: notBefore.Add(ttl),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		URIs:        []*url.URL{id.URL()}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, f.root, pub, f.key)
	if err != nil {
		f.t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c
}

// token returns a join token for id that pins this CA's root (the
// signature part is not checked by the fake).
func (f *fakeCA) token(id spiffe.ID) string {
	p, _ := json.Marshal(map[string]any{"ns": id.Namespace, "sa": id.ServiceAccount, "exp": time.Now().Add(time.Hour).Unix(),
		"ca": []string{pin(f.root)}})
	return "weft.v1." + base64.RawURLEncoding.EncodeToString(p) + ".sig"
}

func (f *fakeCA) CreateCertificate(ctx context.Context, req *pb.IstioCertificateRequest) (*pb.IstioCertificateResponse, error) {
	if f.failing.Load() {
		f.refused.Add(1)
		return nil, status.Error(codes.Unavailable, "fake CA is failing")
	}
	var caller spiffe.ID
	md, _ := metadata.FromIncomingContext(ctx)
	if auth := md.Get("authorization"); len(auth) > 0 && f.saTokens != nil {
		tok := strings.TrimPrefix(auth[0], "Bearer ")
		f.lastToken.Store(tok)
		id, ok := f.saTokens[tok]
		if !ok {
			return nil, status.Error(codes.Unauthenticated, "token not authenticated")
		}
		caller = id
	} else if len(auth) > 0 {
		raw, _ := base64.RawURLEncoding.DecodeString(tokenPart(auth[0]))
		var p struct{ NS, SA string }
		json.Unmarshal(raw, &p)
		caller = spiffe.New(p.NS, p.SA)
	} else if pr, ok := peer.FromContext(ctx); ok {
		info := pr.AuthInfo.(credentials.TLSInfo)
		if len(info.State.VerifiedChains) == 0 {
			return nil, status.Error(codes.Unauthenticated, "no credentials")
		}
		caller, _ = spiffe.FromCert(info.State.VerifiedChains[0][0])
	}
	b, _ := pem.Decode([]byte(req.GetCsr()))
	if b == nil {
		return nil, status.Error(codes.InvalidArgument, "bad CSR")
	}
	csr, err := x509.ParseCertificateRequest(b.Bytes)
	if err != nil || csr.CheckSignature() != nil {
		return nil, status.Error(codes.InvalidArgument, "bad CSR")
	}
	if id, err := spiffe.FromURIs(csr.URIs); err != nil || id != caller {
		return nil, status.Errorf(codes.PermissionDenied, "CSR for %v, caller %v", id, caller)
	}
	ttl := time.Duration(req.GetValidityDuration()) * time.Second
	if ttl == 0 {
		ttl = time.Hour
	}
	leaf := f.sign(csr.PublicKey, caller, ttl, time.Now())
	f.issued.Add(1)
	return &pb.IstioCertificateResponse{CertChain: []string{pemOf(leaf), pemOf(f.root)}}, nil
}

func tokenPart(auth string) string {
	parts := strings.Split(strings.TrimPrefix(auth, "Bearer "), ".")
	if len(parts) != 4 {
		return ""
	}
	return parts[2]
}

func pemOf(c *x509.Certificate) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
}
