package tap

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/weft-mesh/weft/internal/spiffe"
)

// testCA is a root that issues leaves for SPIFFE IDs.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test root"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

func (c *testCA) issue(t *testing.T, id spiffe.ID) (crypto.Signer, []*x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(id.String())
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), URIs: []*url.URL{u}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, &key.PublicKey, c.key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return key, []*x509.Certificate{cert}
}

func TestVerify(t *testing.T) {
	mesh, other := newTestCA(t), newTestCA(t)
	now := time.Now()
	adminKey, adminChain := mesh.issue(t, Identity)
	workloadKey, workloadChain := mesh.issue(t, spiffe.New("default", "bookinfo-reviews"))
	otherKey, otherChain := other.issue(t, Identity)
	sign := func(key crypto.Signer, chain []*x509.Certificate, node string, exp time.Time) string {
		tok, err := Sign(key, chain, node, exp)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	good := sign(adminKey, adminChain, "sidecar~1", now.Add(time.Minute))
	payload, sig, _ := strings.Cut(good, ".")
	strangerKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tests := []struct {
		name  string
		tok   string
		roots *x509.CertPool
		want  string // "" accepted; else part of the refusal
	}{
		{"the control plane's token", good, mesh.pool, ""},
		{"for another proxy", sign(adminKey, adminChain, "sidecar~2", now.Add(time.Minute)), mesh.pool, "not \"sidecar~1\""},
		{"expired", sign(adminKey, adminChain, "sidecar~1", now.Add(-time.Second)), mesh.pool, "expired"},
		{"valid too long", sign(adminKey, adminChain, "sidecar~1", now.Add(time.Hour)), mesh.pool, "too long"},
		{"a workload's certificate", sign(workloadKey, workloadChain, "sidecar~1", now.Add(time.Minute)), mesh.pool, "not the admin identity"},
		{"another CA's admin", sign(otherKey, otherChain, "sidecar~1", now.Add(time.Minute)), mesh.pool, "not from the mesh CA"},
		{"signed with another key", sign(strangerKey, adminChain, "sidecar~1", now.Add(time.Minute)), mesh.pool, "bad signature"},
		{"signature of another payload", sign(adminKey, adminChain, "sidecar~2", now.Add(time.Minute))[:len(payload)] + "." + sig, mesh.pool, ""},
		{"malformed", "not-a-token", mesh.pool, "malformed"},
		{"empty", "", mesh.pool, "malformed"},
		{"no mesh roots", good, nil, "no mesh certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Verify(tt.tok, tt.roots, "sidecar~1", now)
			if tt.name == "signature of another payload" {
				if err == nil {
					t.Fatal("a payload with another token's signature was accepted")
				}
				return
			}
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.want != "" && (err == nil || !errors.Is(err, ErrToken) || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("got %v, want a refusal saying %q", err, tt.want)
			}
		})
	}
}

func TestHub(t *testing.T) {
	var h Hub
	if h.Active() {
		t.Fatal("a new hub is active")
	}
	h.Publish(&Event{Path: "/a"}) // nobody listening: dropped silently
	a, _, stopA := h.Subscribe(Filter{PathPrefix: "/a"})
	b, dropped, stopB := h.Subscribe(Filter{})
	if !h.Active() {
		t.Fatal("a hub with taps is not active")
	}
	h.Publish(&Event{Path: "/a/1"})
	h.Publish(&Event{Path: "/b/1"})
	if e := <-a; e.Path != "/a/1" || len(a) != 0 {
		t.Fatalf("tap /a got %q and %d more", e.Path, len(a))
	}
	if len(b) != 2 {
		t.Fatalf("unfiltered tap got %d events, want 2", len(b))
	}
	for range 300 { // more than b's buffer: it misses some, traffic does not wait
		h.Publish(&Event{Path: "/b"})
	}
	if dropped() == 0 {
		t.Fatal("a tap that did not read missed nothing")
	}
	stopA()
	stopA() // twice is harmless
	stopB()
	if h.Active() {
		t.Fatal("the hub is active after its taps stopped")
	}
}
