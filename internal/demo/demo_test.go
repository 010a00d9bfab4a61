package demo

import (
	"context"
	"net/netip"
	"os"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

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
