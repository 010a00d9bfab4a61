package metrics

import (
	"testing"

	"github.com/weft-mesh/weft/internal/controlplane/xdsserver"
)

// TestTargetsOf: sidecars and gateways are scraped at POD_IP:15090;
// proxies without an IP and proxyless gRPC clients (no Envoy stats) not.
func TestTargetsOf(t *testing.T) {
	tests := []struct {
		name string
		p    xdsserver.ProxyStatus
		want string // target address, "" none
	}{
		{"sidecar", xdsserver.ProxyStatus{Name: "reviews-v1-1", Type: "sidecar", IP: "127.0.1.3"}, "127.0.1.3:15090"},
		{"router", xdsserver.ProxyStatus{Name: "gw", Type: "router", IP: "127.0.0.1"}, "127.0.0.1:15090"},
		{"no IP", xdsserver.ProxyStatus{Name: "x", Type: "sidecar"}, ""},
		{"proxyless", xdsserver.ProxyStatus{Name: "client-1", Type: xdsserver.TypeProxyless, IP: "127.0.1.9"}, ""},
	}
	for _, tt := range tests {
		got := TargetsOf([]xdsserver.ProxyStatus{tt.p})
		switch {
		case tt.want == "" && len(got) != 0:
			t.Errorf("%s: got targets %v, want none", tt.name, got)
		case tt.want != "" && (len(got) != 1 || got[0].Address != tt.want || got[0].Labels[LabelProxyType] != tt.p.Type):
			t.Errorf("%s: got %v, want %s", tt.name, got, tt.want)
		}
	}
}
