package xdsserver

import (
	"strings"
	"testing"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/weft-mesh/weft/internal/controlplane/translate"
)

func TestParseNode(t *testing.T) {
	meta := func(m map[string]any) *structpb.Struct {
		s, err := structpb.NewStruct(m)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	tests := []struct {
		name    string
		node    *core.Node
		want    *proxyInfo
		wantErr string
	}{
		{"id only", &core.Node{Id: "sidecar~127.0.1.7~reviews-v2-1.default~default.svc.cluster.local"},
			&proxyInfo{proxy: translate.Proxy{ID: "sidecar~127.0.1.7~reviews-v2-1.default~default.svc.cluster.local",
				Type: "sidecar", Name: "reviews-v2-1", Namespace: "default", IP: "127.0.1.7"}}, ""},
		{"gateway with metadata", &core.Node{Id: "router~127.0.0.1~gw.istio-system~istio-system.svc.cluster.local",
			UserAgentVersionType: &core.Node_UserAgentVersion{UserAgentVersion: "0.1.0"},
			Metadata: meta(map[string]any{"LABELS": map[string]any{"istio": "ingressgateway"}, "ADMIN_ADDRESS": "127.0.0.1:15000",
				"INSTANCE_IPS": "127.0.0.2,127.0.0.3", "WORKLOAD_NAME": "istio-ingressgateway", "SERVICE_ACCOUNT": "gw"})},
			&proxyInfo{proxy: translate.Proxy{ID: "router~127.0.0.1~gw.istio-system~istio-system.svc.cluster.local",
				Type: "router", Name: "gw", Namespace: "istio-system", IP: "127.0.0.2", ServiceAccount: "gw",
				Labels: map[string]string{"istio": "ingressgateway"}}, admin: "127.0.0.1:15000", version: "0.1.0", workload: "istio-ingressgateway"}, ""},
		{"service", &core.Node{Id: "sidecar~127.0.1.8~ratings-1.default~default.svc.cluster.local",
			Metadata: meta(map[string]any{"WEFT_SERVICE": map[string]any{"name": "ratings",
				"ports": []any{map[string]any{"name": "http", "number": 9080, "protocol": "HTTP"}}}})},
			&proxyInfo{proxy: translate.Proxy{ID: "sidecar~127.0.1.8~ratings-1.default~default.svc.cluster.local",
				Type: "sidecar", Name: "ratings-1", Namespace: "default", IP: "127.0.1.8"},
				service: &ServiceInfo{Name: "ratings", Ports: []ServicePort{{Name: "http", Number: 9080, Protocol: "HTTP"}}}}, ""},
		{"too few parts", &core.Node{Id: "sidecar~127.0.1.7"}, nil, "want TYPE~IP"},
		{"unknown type", &core.Node{Id: "waypoint~127.0.1.7~a.default~default.svc.cluster.local"}, nil, `type "waypoint"`},
		{"no namespace", &core.Node{Id: "sidecar~127.0.1.7~a~x"}, nil, "missing name, namespace or IP"},
		{"service without name", &core.Node{Id: "sidecar~127.0.1.7~a.default~default.svc.cluster.local",
			Metadata: meta(map[string]any{"WEFT_SERVICE": map[string]any{"ports": []any{}}})}, nil, "missing name"},
		{"bad port number", &core.Node{Id: "sidecar~127.0.1.7~a.default~default.svc.cluster.local",
			Metadata: meta(map[string]any{"WEFT_SERVICE": map[string]any{"name": "a", "ports": []any{map[string]any{"number": "x"}}}})},
			nil, "WEFT_SERVICE"},
	}
	for _, tt := range tests {
		got, err := parseNode(tt.node)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%s: err = %v, want %q", tt.name, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(proxyInfo{})); diff != "" {
			t.Errorf("%s: (-want +got)\n%s", tt.name, diff)
		}
	}
}
