package demo

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	networking "istio.io/api/networking/v1alpha3"

	"github.com/weft-mesh/weft/internal/config"
)

// TestGatewayMatchesIstioSample checks the demo's ingress config is Istio's bookinfo-gateway.yaml.
func TestGatewayMatchesIstioSample(t *testing.T) {
	sample, err := os.ReadFile("../../samples/bookinfo/networking/bookinfo-gateway.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want, err := config.Parse("bookinfo-gateway.yaml", sample)
	if err != nil {
		t.Fatal(err)
	}
	got, err := config.Parse("demo", []byte(gatewayYAML("8080")))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("got %d objects, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].Kind != want[i].Kind || got[i].Name != want[i].Name || got[i].Namespace != want[i].Namespace {
			t.Errorf("object %d: got %s %s/%s, want %s %s/%s", i, got[i].Kind, got[i].Namespace, got[i].Name,
				want[i].Kind, want[i].Namespace, want[i].Name)
		}
		if !proto.Equal(got[i].Spec, want[i].Spec) {
			t.Errorf("%s %s: spec differs from the sample:\ngot  %v\nwant %v", want[i].Kind, want[i].Name, got[i].Spec, want[i].Spec)
		}
	}
}

func TestRunRejectsBadOptions(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"no ip base", Options{Ingress: "127.0.0.1:8080", ControlPlaneIP: "127.0.0.1"}, "--ip-base"},
		{"ip base not loopback", Options{IPBase: netip.MustParseAddr("10.0.0.0"), Ingress: "127.0.0.1:8080", ControlPlaneIP: "127.0.0.1"}, "--ip-base"},
		{"control plane not loopback", Options{IPBase: netip.MustParseAddr("127.0.1.0"), Ingress: "127.0.0.1:8080", ControlPlaneIP: "10.1.1.1"}, "--control-plane-ip"},
		{"proxyless bookinfo", Options{Proxyless: true, IPBase: netip.MustParseAddr("127.0.1.0"), Ingress: "127.0.0.1:8080", ControlPlaneIP: "127.0.0.1"}, "--proxyless"},
		{"ingress without port", Options{IPBase: netip.MustParseAddr("127.0.1.0"), Ingress: "127.0.0.1", ControlPlaneIP: "127.0.0.1"}, "--ingress"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Executable, tc.opts.ProxyExecutable = "/nonexistent", "/nonexistent"
			tc.opts.Logger, tc.opts.Out = quietLogger(), &strings.Builder{}
			err := Run(context.Background(), tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Run() = %v, want an error about %s", err, tc.want)
			}
		})
	}
}

// TestProxylessServices checks the ServiceEntries the proxyless demo
// declares: one per service, an endpoint per instance with its pod IP,
// labels and service account, the converter's port GRPC.
func TestProxylessServices(t *testing.T) {
	ws, err := withReplicas(temperatureWorkloads, map[string]int{"converter-v2": 2})
	if err != nil {
		t.Fatal(err)
	}
	objs, err := config.Parse("demo", []byte(proxylessServicesYAML(ws, workloadIPs(netip.MustParseAddr("127.0.1.0"), len(ws)))))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, o := range objs {
		se, ok := o.Spec.(*networking.ServiceEntry)
		if !ok {
			t.Fatalf("%s %s: want ServiceEntries only", o.Kind, o.Name)
		}
		var eps []string
		for _, e := range se.GetEndpoints() {
			eps = append(eps, e.GetAddress()+" "+e.GetLabels()["app"]+"/"+e.GetLabels()["version"]+" "+e.GetServiceAccount())
		}
		p := se.GetPorts()[0]
		got[o.Namespace+"/"+o.Name] = fmt.Sprintf("%v %s %d/%s %s: %s", se.GetHosts(), se.GetLocation(), p.GetNumber(), p.GetProtocol(),
			se.GetResolution(), strings.Join(eps, ", "))
	}
	want := map[string]string{
		"default/converter": "[converter.default.svc.cluster.local] MESH_INTERNAL 50051/GRPC STATIC: " +
			"127.0.1.2 converter/v1 converter, 127.0.1.3 converter/v2 converter, 127.0.1.4 converter/v2 converter",
		"default/temperature": "[temperature.default.svc.cluster.local] MESH_INTERNAL 9080/HTTP STATIC: 127.0.1.1 temperature/v1 temperature",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("services (-want +got):\n%s", d)
	}
}

// TestProxylessRun checks a proxyless workload's command line: weft run
// --proxyless with its identity, the app with --proxyless, the API
// dialing the converter's xds:/// target.
func TestProxylessRun(t *testing.T) {
	api := strings.Join(proxylessRun(temperatureWorkloads[0], "http:9080", "temperature", "127.0.1.1", "127.0.0.1:15010", "/bin/weft"), " ")
	want := "run --proxyless --name temperature-v1-1 --namespace default --service temperature --version v1 --port http:9080 " +
		"--service-account temperature --ip 127.0.1.1 --xds-address 127.0.0.1:15010 -- /bin/weft temperature api --proxyless " +
		"--converter xds:///converter.default.svc.cluster.local:50051"
	if api != want {
		t.Errorf("api:\n got %s\nwant %s", api, want)
	}
	conv := strings.Join(proxylessRun(temperatureWorkloads[2], "grpc:50051", "converter", "127.0.1.3", "127.0.0.1:15010", "/bin/weft"), " ")
	if !strings.HasSuffix(conv, "-- /bin/weft temperature converter --fail-percent 30 --proxyless") {
		t.Errorf("converter v2: %s", conv)
	}
}
