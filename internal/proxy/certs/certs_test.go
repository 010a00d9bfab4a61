package certs

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	pb "istio.io/api/security/v1alpha1"

	"github.com/weft-mesh/weft/internal/spiffe"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var (
	idA = spiffe.New("default", "bookinfo-productpage")
	idB = spiffe.New("default", "bookinfo-reviews")
)

// startClient gets a certificate for id from ca and renews it until test end.
func startClient(t *testing.T, ca *fakeCA, id spiffe.ID, ttl time.Duration) *Client {
	t.Helper()
	c, err := New(Options{Address: ca.addr, Identity: id, Token: ca.token(id), TTL: ttl, MinRetry: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// echoServer accepts TLS connections with cfg and echoes; it reports each
// handshake's error (nil on success) on the returned channel.
func echoServer(t *testing.T, cfg *tls.Config) (string, <-chan error) {
	t.Helper()
	lis, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	handshakes := make(chan error, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			conn, err := lis.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				err := conn.(*tls.Conn).Handshake()
				select {
				case handshakes <- err:
				default:
				}
				if err == nil {
					io.Copy(conn, conn)
				}
			}()
		}
	}()
	t.Cleanup(func() { lis.Close(); <-done })
	return lis.Addr().String(), handshakes
}

func dial(t *testing.T, addr string, cfg *tls.Config) (*tls.Conn, error) {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err == nil {
		t.Cleanup(func() { conn.Close() })
	}
	return conn, err
}

func echo(t *testing.T, conn *tls.Conn, msg string) {
	t.Helper()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write([]byte(msg)); err != nil {
		t.Fatalf("write: %v", err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(conn, buf); err != nil || string(buf) != msg {
		t.Fatalf("echo: %q, %v", buf, err)
	}
}

func TestMutualTLS(t *testing.T) {
	ca := newFakeCA(t)
	ca.serve()
	a, b := startClient(t, ca, idA, 0), startClient(t, ca, idB, 0)
	leaf, chain := a.Current()
	if leaf == nil || !strings.Contains(string(chain), "BEGIN CERTIFICATE") {
		t.Fatal("Current: no certificate")
	}
	if id, _ := spiffe.FromCert(leaf); id != idA {
		t.Errorf("certificate for %v, want %v", id, idA)
	}
	seen := make(chan spiffe.ID, 4)
	addr, _ := echoServer(t, b.ServerTLSConfig(func(id spiffe.ID) error { seen <- id; return nil }))
	sni := SNI(9080, "v1", "reviews.default.svc.cluster.local")
	if sni != "outbound_.9080_.v1_.reviews.default.svc.cluster.local" {
		t.Errorf("SNI = %q", sni)
	}
	conn, err := dial(t, addr, a.ClientTLSConfig(sni, []spiffe.ID{idB}))
	if err != nil {
		t.Fatal(err)
	}
	echo(t, conn, "hello")
	if p := conn.ConnectionState().NegotiatedProtocol; p != ALPNPeerExchange {
		t.Errorf("ALPN %q, want %q", p, ALPNPeerExchange)
	}
	if got := <-seen; got != idA {
		t.Errorf("server saw %v, want %v", got, idA)
	}
}

func TestRefusedPeers(t *testing.T) {
	ca, other := newFakeCA(t), newFakeCA(t)
	ca.serve()
	other.serve()
	a, b := startClient(t, ca, idA, 0), startClient(t, ca, idB, 0)
	stranger := startClient(t, other, idA, 0)
	addr, handshakes := echoServer(t, b.ServerTLSConfig(func(id spiffe.ID) error {
		if id != idA {
			return errors.New("only productpage may call reviews")
		}
		return nil
	}))

	// A client certificate from another CA: the server refuses it.
	foreign := stranger.ClientTLSConfig("x", nil)
	foreign.VerifyPeerCertificate = nil // the stranger would refuse the server too
	if conn, err := dial(t, addr, foreign); err == nil {
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		conn.Read(make([]byte, 1)) // TLS 1.3: the refusal comes after the client's handshake
	}
	if err := <-handshakes; err == nil || !strings.Contains(err.Error(), "not from the mesh CA") {
		t.Errorf("client from another CA: server handshake error %v", err)
	}
	// A server certificate from another CA: the client refuses it.
	strangerAddr, _ := echoServer(t, stranger.ServerTLSConfig(nil))
	if _, err := dial(t, strangerAddr, a.ClientTLSConfig("x", nil)); err == nil || !strings.Contains(err.Error(), "not from the mesh CA") {
		t.Errorf("server from another CA: %v", err)
	}

	// An expired certificate from the right CA.
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	expired := ca.sign(key.Public(), idA, time.Hour, time.Now().Add(-2*time.Hour))
	cfg := &tls.Config{InsecureSkipVerify: true, NextProtos: []string{ALPNIstio},
		Certificates: []tls.Certificate{{Certificate: [][]byte{expired.Raw}, PrivateKey: key}}}
	if conn, err := dial(t, addr, cfg); err == nil {
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		conn.Read(make([]byte, 1))
	}
	if err := <-handshakes; err == nil || !strings.Contains(err.Error(), "expired at") {
		t.Errorf("expired client certificate: server handshake error %v", err)
	}

	// A wrong SPIFFE ID: the client expects ratings, reviews answers.
	if _, err := dial(t, addr, a.ClientTLSConfig("x", []spiffe.ID{spiffe.New("default", "bookinfo-ratings")})); err == nil ||
		!strings.Contains(err.Error(), "peer identity spiffe://cluster.local/ns/default/sa/bookinfo-reviews is not allowed") {
		t.Errorf("wrong server identity: %v", err)
	}
	<-handshakes
	// The server's verifyPeer refuses a caller it does not allow.
	c := startClient(t, ca, spiffe.New("default", "bookinfo-details"), 0)
	if conn, err := dial(t, addr, c.ClientTLSConfig("x", nil)); err == nil {
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		conn.Read(make([]byte, 1))
	}
	if err := <-handshakes; err == nil || !strings.Contains(err.Error(), "only productpage") {
		t.Errorf("caller not allowed: server handshake error %v", err)
	}
}

func TestRotationKeepsConnections(t *testing.T) {
	ca := newFakeCA(t)
	ca.serve()
	a, b := startClient(t, ca, idA, 4*time.Second), startClient(t, ca, idB, 4*time.Second)
	addr, _ := echoServer(t, b.ServerTLSConfig(nil))
	first, _ := a.Current()
	long, err := dial(t, addr, a.ClientTLSConfig("x", []spiffe.ID{idB}))
	if err != nil {
		t.Fatal(err)
	}
	echo(t, long, "before")
	// Wait until the first certificate has expired: it was renewed twice or so.
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(first.NotAfter.Add(500 * time.Millisecond)) {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		select {
		case <-a.Renewed():
		case <-time.After(100 * time.Millisecond):
		}
	}
	echo(t, long, "after the first certificate expired")
	now, _ := a.Current()
	if now.SerialNumber.Cmp(first.SerialNumber) == 0 || !time.Now().Before(now.NotAfter) {
		t.Fatalf("certificate not renewed: serial %v, expires %v", now.SerialNumber, now.NotAfter)
	}
	fresh, err := dial(t, addr, a.ClientTLSConfig("x", []spiffe.ID{idB}))
	if err != nil {
		t.Fatalf("new handshake after rotation: %v", err)
	}
	echo(t, fresh, "new")
	if peerLeaf := fresh.ConnectionState().PeerCertificates[0]; !time.Now().Before(peerLeaf.NotAfter) {
		t.Errorf("server presented an expired certificate")
	}
}

func TestRenewalFailureKeepsCertificate(t *testing.T) {
	ca := newFakeCA(t)
	ca.serve()
	a := startClient(t, ca, idA, 4*time.Second)
	first, _ := a.Current()
	ca.failing.Store(true)
	// The renewal is due in ~2s; wait for it and a retry to fail.
	deadline := time.Now().Add(10 * time.Second)
	for ca.refused.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting for the renewal to fail twice")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if cur, _ := a.Current(); cur.SerialNumber.Cmp(first.SerialNumber) != 0 {
		t.Fatal("the certificate changed while the CA was failing")
	}
	ca.failing.Store(false)
	select {
	case <-a.Renewed():
	case <-time.After(10 * time.Second):
	}
	for cur, _ := a.Current(); cur.SerialNumber.Cmp(first.SerialNumber) == 0; cur, _ = a.Current() {
		select {
		case <-a.Renewed():
		case <-time.After(10 * time.Second):
			t.Fatal("no renewal after the CA came back")
		}
	}
}

func TestBootstrapAuthenticatesControlPlane(t *testing.T) {
	ca, other := newFakeCA(t), newFakeCA(t)
	ca.serve()
	// A token that pins another CA: the proxy refuses to send it to this one.
	c, err := New(Options{Address: ca.addr, Identity: idA, Token: other.token(idA), MinRetry: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := c.Start(ctx); err == nil || !strings.Contains(err.Error(), "not from the mesh CA") {
		t.Errorf("token pinning another CA: %v", err)
	}
	if ca.issued.Load() != 0 {
		t.Error("the token reached the CA")
	}
	// No token and no certificate.
	if _, err := New(Options{Address: ca.addr}); err == nil {
		t.Error("no identity: want an error")
	}
}

// TestTokenFile gets the first certificate with a service-account token
// read from a file and the CA root given as PEM, and re-reads the file
// (which the kubelet rotates) for the next token-authenticated call.
func TestTokenFile(t *testing.T) {
	ca := newFakeCA(t)
	ca.saTokens = map[string]spiffe.ID{"sa-token-1": idA, "sa-token-2": idA}
	ca.serve()
	file := filepath.Join(t.TempDir(), "istio-token")
	if err := os.WriteFile(file, []byte("sa-token-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Without the root, a service-account token cannot authenticate the control plane.
	c, err := New(Options{Address: ca.addr, Identity: idA, TokenFile: file})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.fetch(context.Background()); err == nil || !strings.Contains(err.Error(), "--root-cert-file") {
		t.Errorf("no root: %v, want an error naming --root-cert-file", err)
	}
	c, err = New(Options{Address: ca.addr, Identity: idA, TokenFile: file, RootCAs: []byte(pemOf(ca.root)), MinRetry: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	c.Close() // no renewals in the background while the test swaps the state
	if leaf, _ := c.Current(); leaf == nil || ca.lastToken.Load() != "sa-token-1" {
		t.Fatalf("certificate %v, token presented %v; want one got with sa-token-1", leaf, ca.lastToken.Load())
	}
	if err := os.WriteFile(file, []byte("sa-token-2"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.cur.Store(nil) // as when the certificate has expired: authenticate with the token again
	if err := c.fetch(ctx); err != nil {
		t.Fatal(err)
	}
	if ca.lastToken.Load() != "sa-token-2" {
		t.Errorf("token presented %v, want the rotated sa-token-2", ca.lastToken.Load())
	}
	if err := os.WriteFile(file, []byte("revoked"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.cur.Store(nil)
	if err := c.fetch(ctx); status.Code(errors.Unwrap(err)) != codes.Unauthenticated {
		t.Errorf("unknown token: %v, want Unauthenticated", err)
	}
}

func TestDialOption(t *testing.T) {
	ca := newFakeCA(t)
	ca.serve()
	a := startClient(t, ca, idA, 0)
	conn, err := grpc.NewClient(ca.addr, a.DialOption())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// An authenticated call over it: the CA sees the proxy's certificate.
	_, err = pb.NewIstioCertificateServiceClient(conn).CreateCertificate(context.Background(), &pb.IstioCertificateRequest{Csr: "x"})
	if err == nil || !strings.Contains(err.Error(), "bad CSR") {
		t.Errorf("call over DialOption: %v (want the CA's answer to a bad CSR)", err)
	}
}
