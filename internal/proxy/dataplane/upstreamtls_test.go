package dataplane

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
)

// TestTLSOrigination: a plaintext request through the sidecar reaches a
// TLS upstream over TLS with the cluster's SNI, verified against the CA
// given; a wrong CA fails the handshake with 503 UF.
func TestTLSOrigination(t *testing.T) {
	var sni string
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sni = r.TLS.ServerName
		fmt.Fprint(w, "secure")
	}))
	srv.StartTLS()
	defer srv.Close()
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644)
	// httptest's servers share one certificate: make another CA.
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "other CA"}, IsCA: true,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	wrongCA := filepath.Join(dir, "wrong.pem")
	os.WriteFile(wrongCA, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)

	upstream := netip.MustParseAddrPort(srv.Listener.Addr().String())
	ip := randIP()
	client := newTestDataplane(t, ModeSidecar, ip)
	tlsCluster := func(name, caFile string) *cluster.Cluster {
		c := staticCluster(t, name, upstream, false)
		ctx := &tlsv3.UpstreamTlsContext{Sni: "example.com", CommonTlsContext: &tlsv3.CommonTlsContext{
			ValidationContextType: &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
				TrustedCa: &core.DataSource{Specifier: &core.DataSource_Filename{Filename: caFile}}}}}}
		c.TransportSocket = &core.TransportSocket{Name: "envoy.transport_sockets.tls", ConfigType: &core.TransportSocket_TypedConfig{TypedConfig: mustAny(t, ctx)}}
		return c
	}
	apply(t, client, clusterType, append(specialClusters(), tlsCluster("good", ca), tlsCluster("bad", wrongCA))...)
	port := uint16(18443)
	apply(t, client, listenerType, outboundListener(t, ip), httpListener(t, port, "r", false))
	apply(t, client, routeType, &route.RouteConfiguration{Name: "r", VirtualHosts: []*route.VirtualHost{{
		Name: "api", Domains: []string{"api.example.com:18443"}, Routes: []*route.Route{prefixRoute("bad", "/bad", "bad"), prefixRoute("good", "/", "good")}}}})
	c := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(mustURL("http://" + netip.AddrPortFrom(ip, testOutbound).String()))}}
	resp, err := c.Get("http://api.example.com:18443/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "secure" || sni != "example.com" {
		t.Fatalf("got %d %q with SNI %q, want 200 secure over TLS with SNI example.com", resp.StatusCode, b, sni)
	}
	resp, err = c.Get("http://api.example.com:18443/bad")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("x-weft-response-flags") != "UF" {
		t.Fatalf("an upstream certificate from another CA: %d %q, want 503 UF", resp.StatusCode, resp.Header.Get("x-weft-response-flags"))
	}
}
