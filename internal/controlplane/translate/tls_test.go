package translate

import (
	"testing"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tcpproxy "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"

	"github.com/weft-mesh/weft/internal/config"
	"github.com/weft-mesh/weft/internal/controlplane/registry"
)

const tlsOrigination = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: googleapis, namespace: default}
spec:
  hosts: [www.googleapis.com]
  ports: [{number: 80, name: http, protocol: HTTP}, {number: 443, name: https, protocol: HTTPS}]
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: originate-tls-for-googleapis, namespace: default}
spec:
  host: www.googleapis.com
  trafficPolicy:
    portLevelSettings:
    - port: {number: 443}
      tls: {mode: SIMPLE}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ratings, namespace: default}
spec:
  host: ratings
  trafficPolicy:
    tls: {mode: MUTUAL, clientCertificate: /certs/client.pem, privateKey: /certs/key.pem, caCertificates: /certs/ca.pem, sni: ratings.example, subjectAltNames: [ratings.example]}
`

// TestTLSOrigination: DestinationRule tls SIMPLE and MUTUAL become the
// cluster's tls transport socket (port-level settings for their port only).
func TestTLSOriginationClusters(t *testing.T) {
	out := buildFor(t, tlsOrigination, Mesh{})
	got := map[string]*cluster.Cluster{}
	for _, r := range out.Clusters {
		c := r.(*cluster.Cluster)
		got[c.GetName()] = c
	}
	tlsOf := func(name string) *tlsv3.UpstreamTlsContext {
		t.Helper()
		c := got[name]
		if c == nil {
			t.Fatalf("no cluster %s", name)
		}
		if c.GetTransportSocket() == nil {
			return nil
		}
		u := &tlsv3.UpstreamTlsContext{}
		if err := c.GetTransportSocket().GetTypedConfig().UnmarshalTo(u); err != nil {
			t.Fatal(err)
		}
		if len(c.GetTransportSocketMatches()) > 0 {
			t.Errorf("%s: TLS origination must replace the mesh's transport socket matches", name)
		}
		return u
	}
	if u := tlsOf("outbound|443||www.googleapis.com"); u.GetSni() != "www.googleapis.com" ||
		u.GetCommonTlsContext().GetValidationContext().GetTrustedCa().GetFilename() != SystemCABundle {
		t.Errorf("443 SIMPLE: %v", u)
	}
	if u := tlsOf("outbound|80||www.googleapis.com"); u != nil {
		t.Errorf("port 80 has no tls settings: %v", u)
	}
	u := tlsOf("outbound|9080||ratings.default.svc.cluster.local")
	if u.GetSni() != "ratings.example" || u.GetCommonTlsContext().GetTlsCertificates()[0].GetCertificateChain().GetFilename() != "/certs/client.pem" ||
		u.GetCommonTlsContext().GetValidationContext().GetMatchTypedSubjectAltNames()[0].GetMatcher().GetExact() != "ratings.example" {
		t.Errorf("MUTUAL: %v", u)
	}
}

const sniConfig = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: external, namespace: default}
spec:
  hosts: [www.google.com, edition.cnn.com]
  location: MESH_EXTERNAL
  resolution: DNS
  ports: [{number: 443, name: tls, protocol: TLS}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: passthrough, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: tls, protocol: TLS}
    hosts: ["*.example.com"]
    tls: {mode: PASSTHROUGH}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: passthrough, namespace: default}
spec:
  hosts: ["*.example.com"]
  gateways: [passthrough]
  tls:
  - match: [{port: 443, sniHosts: [nginx.example.com]}]
    route: [{destination: {host: reviews, port: {number: 9080}}}]
`

// TestSNIChains: TLS ports get a chain per server name behind a
// tls_inspector, on sidecars (per service) and PASSTHROUGH gateways (per
// tls route), with unknown names passed through or refused.
func TestSNIChains(t *testing.T) {
	names := func(out *Output, name string) map[string]string {
		got := map[string]string{}
		for _, r := range out.Listeners {
			l := r.(*listener.Listener)
			if l.GetName() != name {
				continue
			}
			if len(l.GetListenerFilters()) != 1 || l.GetListenerFilters()[0].GetName() != "envoy.filters.listener.tls_inspector" {
				t.Errorf("%s: listener filters %v, want the tls_inspector", name, l.GetListenerFilters())
			}
			for _, fc := range l.GetFilterChains() {
				tp := &tcpproxy.TcpProxy{}
				fc.GetFilters()[0].GetTypedConfig().UnmarshalTo(tp)
				for _, n := range fc.GetFilterChainMatch().GetServerNames() {
					got[n] = tp.GetCluster()
				}
			}
			tp := &tcpproxy.TcpProxy{}
			l.GetDefaultFilterChain().GetFilters()[0].GetTypedConfig().UnmarshalTo(tp)
			got["(default)"] = tp.GetCluster()
		}
		return got
	}
	side := names(buildFor(t, sniConfig, Mesh{}), "0.0.0.0_443")
	want := map[string]string{"www.google.com": "outbound|443||www.google.com", "edition.cnn.com": "outbound|443||edition.cnn.com", "(default)": PassthroughCluster}
	for k, v := range want {
		if side[k] != v {
			t.Errorf("sidecar 443: %s -> %q, want %q (all: %v)", k, side[k], v, side)
		}
	}
	objs := load(t, "testdata/bookinfo-registry.yaml")
	more, err := config.Parse("sni.yaml", []byte(sniConfig))
	if err != nil {
		t.Fatal(err)
	}
	objs = append(objs, more...)
	gw, err := Build(Input{Config: objs, Registry: registry.Build(objs), Proxy: Proxy{Type: ProxyRouter, Name: "istio-ingressgateway",
		Namespace: "istio-system", IP: "127.0.0.1", Labels: map[string]string{"istio": "ingressgateway"}}})
	if err != nil {
		t.Fatal(err)
	}
	g := names(gw, "0.0.0.0_443")
	if g["nginx.example.com"] != "outbound|9080||reviews.default.svc.cluster.local" || g["(default)"] != BlackHoleCluster {
		t.Errorf("gateway PASSTHROUGH 443: %v", g)
	}
}
