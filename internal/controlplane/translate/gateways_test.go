package translate

import "testing"

// TestMatchGateways: a match's gateways pick where its route applies —
// "mesh" for sidecars, a Gateway (qualified by the VirtualService's
// namespace) for routers; a match naming none applies everywhere.
func TestMatchGateways(t *testing.T) {
	gw := []string{"default/istio-egressgateway"}
	tests := []struct {
		name     string
		match    []string
		gateways []string
		want     bool
	}{
		{"no gateways: sidecar", nil, nil, true},
		{"no gateways: router", nil, gw, true},
		{"mesh on a sidecar", []string{"mesh"}, nil, true},
		{"mesh on a router", []string{"mesh"}, gw, false},
		{"gateway on a sidecar", []string{"istio-egressgateway"}, nil, false},
		{"gateway on its router", []string{"istio-egressgateway"}, gw, true},
		{"qualified gateway on its router", []string{"default/istio-egressgateway"}, gw, true},
		{"other gateway", []string{"istio-ingressgateway"}, gw, false},
	}
	for _, tt := range tests {
		if got := matchGateways(tt.match, "default", tt.gateways); got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
}
