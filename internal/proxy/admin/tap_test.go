package admin

import (
	"bufio"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/weft-mesh/weft/internal/tap"
)

// adminCredential makes a root and a leaf for tap.Identity signed by it.
func adminCredential(t *testing.T) (*x509.CertPool, crypto.Signer, []*x509.Certificate) {
	t.Helper()
	rootKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rootTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	rootDER, err := x509.CreateCertificate(rand.Reader, rootTmpl, rootTmpl, &rootKey.PublicKey, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := x509.ParseCertificate(rootDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	u, _ := url.Parse(tap.Identity.String())
	leafTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), URIs: []*url.URL{u}, KeyUsage: x509.KeyUsageDigitalSignature,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, root, &key.PublicKey, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(leafDER)
	pool := x509.NewCertPool()
	pool.AddCert(root)
	return pool, key, []*x509.Certificate{leaf}
}

func TestTapEndpoint(t *testing.T) {
	roots, key, chain := adminCredential(t)
	hub := &tap.Hub{}
	s, data := newTestServer(t)
	data.ready.Store(true)
	s.opts.Tap, s.opts.TapRoots = hub, func() *x509.CertPool { return roots }
	srv := httptest.NewServer(s.AdminHandler())
	defer srv.Close()
	node := s.opts.Node.GetId()
	token := func(node string) string {
		tok, err := tap.Sign(key, chain, node, time.Now().Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	tapGet := func(query, tok string) *http.Response {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/tap?"+query, nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}

	for _, tt := range []struct{ name, tok string }{{"no token", ""}, {"garbage", "x.y"}, {"another proxy's token", token("sidecar~other")}} {
		resp := tapGet("", tt.tok)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s: %s, want 403", tt.name, resp.Status)
		}
	}
	if hub.Active() {
		t.Fatal("a refused tap attached")
	}

	resp := tapGet("path=/reviews&max=2", token(node))
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("tap with the control plane's token: %s", resp.Status)
	}
	for !hub.Active() {
		time.Sleep(time.Millisecond)
	}
	for _, p := range []string{"/ratings/0", "/reviews/0", "/details/0", "/reviews/1", "/reviews/2"} {
		hub.Publish(&tap.Event{Path: p, Method: "GET", Status: 200})
	}
	var got []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var e tap.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		got = append(got, e.Path)
	}
	if len(got) != 2 || got[0] != "/reviews/0" || got[1] != "/reviews/1" {
		t.Fatalf("tap ?path=/reviews&max=2 streamed %v, want [/reviews/0 /reviews/1] and the end", got)
	}
	for hub.Active() { // the handler detaches once it sent max
		time.Sleep(time.Millisecond)
	}

	s.opts.Tap = nil
	resp2 := tapGet("", token(node))
	resp2.Body.Close()
	if resp2.StatusCode != http.StatusNotFound {
		t.Errorf("tap on a proxy without a hub: %s, want 404", resp2.Status)
	}
}
