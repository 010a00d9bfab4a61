package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/weft-mesh/weft/internal/spiffe"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// csrFor returns a PEM CSR with the given URI SANs and its key.
func csrFor(t *testing.T, uris ...string) ([]byte, crypto.Signer) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.CertificateRequest{}
	for _, u := range uris {
		pu, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = append(tmpl.URIs, pu)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), key
}

func leafOf(t *testing.T, chain []byte) *x509.Certificate {
	t.Helper()
	certs, err := ParseCerts(chain)
	if err != nil {
		t.Fatal(err)
	}
	return certs[0]
}

func TestGeneratedRootPersists(t *testing.T) {
	dir := t.TempDir()
	a, err := New(Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	root := a.Certificate()
	if root.Subject.CommonName != "weft root CA" || root.Subject.Organization[0] != "cluster.local" || !root.IsCA {
		t.Errorf("root subject %v, IsCA %v", root.Subject, root.IsCA)
	}
	if d := root.NotAfter.Sub(root.NotBefore); d < RootTTL {
		t.Errorf("root validity %s, want 10 years", d)
	}
	if _, ok := root.PublicKey.(*ecdsa.PublicKey); !ok {
		t.Errorf("root key %T, want ECDSA", root.PublicKey)
	}
	fi, err := os.Stat(filepath.Join(dir, "ca", RootKeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("root key file: %v, %v", fi, err)
	}
	b, err := New(Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if !b.Certificate().Equal(root) {
		t.Error("a second start generated another root instead of loading it")
	}
}

func TestSign(t *testing.T) {
	a, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	id := spiffe.New("default", "bookinfo-reviews")
	csr, key := csrFor(t, id.String())
	chain, err := a.Sign(csr, id, 0)
	if err != nil {
		t.Fatal(err)
	}
	leaf := leafOf(t, chain)
	if got, err := spiffe.FromCert(leaf); err != nil || got != id {
		t.Errorf("leaf identity %v, %v", got, err)
	}
	if !leaf.PublicKey.(*ecdsa.PublicKey).Equal(key.Public()) {
		t.Error("leaf is not for the CSR's key")
	}
	if leaf.KeyUsage != x509.KeyUsageDigitalSignature|x509.KeyUsageKeyEncipherment || len(leaf.ExtKeyUsage) != 2 || leaf.IsCA {
		t.Errorf("leaf usages %v %v IsCA %v", leaf.KeyUsage, leaf.ExtKeyUsage, leaf.IsCA)
	}
	if d := leaf.NotAfter.Sub(leaf.NotBefore); d != DefaultTTL+backdate {
		t.Errorf("validity %s, want 24h + 1m back-dating", d)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: a.Roots(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("leaf does not verify against the bundle: %v", err)
	}
	// DER works too, and a TTL up to 7 days.
	b, _ := pem.Decode(csr)
	if _, err := a.Sign(b.Bytes, id, MaxTTL); err != nil {
		t.Errorf("DER CSR, 7 days: %v", err)
	}
	if a.RefusedCSRs() != 0 {
		t.Errorf("RefusedCSRs = %d, want 0", a.RefusedCSRs())
	}
}

func TestSignRefuses(t *testing.T) {
	a, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	caller := spiffe.New("a", "sa")
	other, _ := csrFor(t, spiffe.New("b", "sa").String())
	two, _ := csrFor(t, caller.String(), "spiffe://cluster.local/ns/b/sa/sa")
	none, _ := csrFor(t)
	good, _ := csrFor(t, caller.String())
	tampered := append([]byte(nil), good...)
	blk, _ := pem.Decode(tampered)
	blk.Bytes[len(blk.Bytes)-5] ^= 0xff
	cases := []struct {
		name string
		csr  []byte
		ttl  time.Duration
		want string
	}{
		{"other identity", other, 0, "CSR asks for spiffe://cluster.local/ns/b/sa/sa but the caller is spiffe://cluster.local/ns/a/sa/sa"},
		{"two URIs", two, 0, "2 URI SANs"},
		{"no URI", none, 0, "0 URI SANs"},
		{"bad signature", pem.EncodeToMemory(blk), 0, "CSR"},
		{"garbage", []byte("hello"), 0, "CSR"},
		{"too long", good, MaxTTL + time.Second, "longer than the maximum"},
	}
	for i, tc := range cases {
		_, err := a.Sign(tc.csr, caller, tc.ttl)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want it to contain %q", tc.name, err, tc.want)
		}
		if got := a.RefusedCSRs(); got != int64(i+1) {
			t.Errorf("%s: RefusedCSRs = %d, want %d", tc.name, got, i+1)
		}
	}
	if _, err := a.Sign(other, caller, 0); !errors.Is(err, ErrIdentityMismatch) {
		t.Errorf("other identity: %v is not ErrIdentityMismatch", err)
	}
}

// writePEM writes certs (and a key) to files in dir.
func writePEM(t *testing.T, name string, blocks ...*pem.Block) string {
	t.Helper()
	var data []byte
	for _, b := range blocks {
		data = append(data, pem.EncodeToMemory(b)...)
	}
	if err := os.WriteFile(name, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return name
}

func TestBringYourOwnIntermediate(t *testing.T) {
	dir := t.TempDir()
	rootKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rootTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "corp root"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour * 100), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	rootDER, _ := x509.CreateCertificate(rand.Reader, rootTmpl, rootTmpl, rootKey.Public(), rootKey)
	root, _ := x509.ParseCertificate(rootDER)
	intKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	intTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "mesh intermediate"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour * 50), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	intDER, _ := x509.CreateCertificate(rand.Reader, intTmpl, root, intKey.Public(), rootKey)
	intKeyDER, _ := x509.MarshalECPrivateKey(intKey)

	certFile := writePEM(t, filepath.Join(dir, "ca-cert.pem"), &pem.Block{Type: "CERTIFICATE", Bytes: intDER})
	keyFile := writePEM(t, filepath.Join(dir, "ca-key.pem"), &pem.Block{Type: "EC PRIVATE KEY", Bytes: intKeyDER})
	chainFile := writePEM(t, filepath.Join(dir, "cert-chain.pem"), &pem.Block{Type: "CERTIFICATE", Bytes: rootDER})
	otherRoot, _ := New(Options{})
	extra := writePEM(t, filepath.Join(dir, "extra.pem"), &pem.Block{Type: "CERTIFICATE", Bytes: otherRoot.Certificate().Raw})

	a, err := New(Options{CertFile: certFile, KeyFile: keyFile, ChainFile: chainFile, ExtraRootsFile: extra})
	if err != nil {
		t.Fatal(err)
	}
	bundle, _ := ParseCerts(a.TrustBundle())
	if len(bundle) != 2 || !bundle[0].Equal(root) || !bundle[1].Equal(otherRoot.Certificate()) {
		t.Errorf("bundle has %d roots, want the corp root then the extra root", len(bundle))
	}
	id := spiffe.New("default", "x")
	csr, _ := csrFor(t, id.String())
	chain, err := a.Sign(csr, id, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	certs, _ := ParseCerts(chain)
	if len(certs) != 2 || certs[1].Subject.CommonName != "mesh intermediate" {
		t.Fatalf("chain: %d certs, want leaf + intermediate", len(certs))
	}
	inter := x509.NewCertPool()
	inter.AddCert(certs[1])
	if _, err := certs[0].Verify(x509.VerifyOptions{Roots: a.Roots(), Intermediates: inter}); err != nil {
		t.Errorf("leaf does not chain to the corp root: %v", err)
	}
	// A leaf never outlives its CA.
	long, err := a.Sign(csr, id, MaxTTL)
	if err != nil {
		t.Fatal(err)
	}
	if leafOf(t, long).NotAfter.After(certs[1].NotAfter) {
		t.Error("leaf outlives the intermediate")
	}

	// Wrong key, key without cert, chain without cert.
	if _, err := New(Options{CertFile: certFile, KeyFile: writePEM(t, filepath.Join(dir, "k2"), &pem.Block{Type: "EC PRIVATE KEY", Bytes: mustEC(t)})}); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Errorf("mismatched key: %v", err)
	}
	if _, err := New(Options{KeyFile: keyFile}); err == nil {
		t.Error("--ca-key alone: want an error")
	}
	if _, err := New(Options{ChainFile: chainFile}); err == nil {
		t.Error("--ca-chain alone: want an error")
	}
}

func mustEC(t *testing.T) []byte {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}
