package translate

import (
	"os"
	"testing"

	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tcpproxy "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"

	"github.com/weft-mesh/weft/internal/config"
	"github.com/weft-mesh/weft/internal/controlplane/registry"
)

const tcpEchoRegistry = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: tcp-echo, namespace: default}
spec:
  hosts: [tcp-echo.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{name: tcp, number: 9000, protocol: TCP}, {name: tcp-other, number: 9001, protocol: TCP}]
  workloadSelector: {labels: {app: tcp-echo}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: tcp-echo-v1-1, namespace: default}
spec: {address: 127.0.2.1, labels: {app: tcp-echo, version: v1}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: tcp-echo-v2-1, namespace: default}
spec: {address: 127.0.2.2, labels: {app: tcp-echo, version: v2}}
`

// TestTCPRoutes: Istio's tcp-echo samples give the gateway a TCP listener
// on 31400 whose tcp_proxy splits 80/20 between the v1 and v2 subsets.
func TestTCPRoutes(t *testing.T) {
	var objs []*config.Object
	for _, f := range []string{"tcp-echo-all-v1.yaml", "tcp-echo-20-v2.yaml"} {
		data, err := os.ReadFile("../../../samples/tcp-echo/" + f)
		if err != nil {
			t.Fatal(err)
		}
		o, err := config.Parse(f, data)
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range o {
			if x.Namespace == "" {
				x.Namespace = "default"
			}
			// As the store does: a later object with the same kind and name replaces the earlier.
			for i, old := range objs {
				if old.Kind == x.Kind && old.Name == x.Name && old.Namespace == x.Namespace {
					objs = append(objs[:i], objs[i+1:]...)
					break
				}
			}
			objs = append(objs, x)
		}
	}
	reg, err := config.Parse("registry.yaml", []byte(tcpEchoRegistry))
	if err != nil {
		t.Fatal(err)
	}
	objs = append(objs, reg...)
	out, err := Build(Input{Config: objs, Registry: registry.Build(objs), Proxy: Proxy{Type: ProxyRouter, Name: "istio-ingressgateway",
		Namespace: "istio-system", IP: "127.0.0.1", Labels: map[string]string{"istio": "ingressgateway"}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range out.Listeners {
		l := r.(*listener.Listener)
		if l.GetName() != "0.0.0.0_31400" {
			continue
		}
		tp := &tcpproxy.TcpProxy{}
		if err := l.GetFilterChains()[0].GetFilters()[0].GetTypedConfig().UnmarshalTo(tp); err != nil {
			t.Fatal(err)
		}
		wc := tp.GetWeightedClusters().GetClusters()
		if len(wc) != 2 || wc[0].GetName() != "outbound|9000|v1|tcp-echo.default.svc.cluster.local" || wc[0].GetWeight() != 80 ||
			wc[1].GetName() != "outbound|9000|v2|tcp-echo.default.svc.cluster.local" || wc[1].GetWeight() != 20 {
			t.Fatalf("31400 tcp_proxy: %v", tp)
		}
		return
	}
	t.Fatal("no 0.0.0.0_31400 listener on the gateway")
}
