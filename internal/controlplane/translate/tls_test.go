package translate

import (
	"testing"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
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
