package config

import (
	"strings"
	"testing"

	meshconfig "istio.io/api/mesh/v1alpha1"
)

func TestParseMeshConfig(t *testing.T) {
	tests := []struct {
		name, in string
		norm     meshconfig.MeshConfig_ProxyPathNormalization_NormalizationType
		outbound string // "" when outboundTrafficPolicy is not set
		unimpl   string
		wantErr  string
	}{
		{name: "empty", in: "", norm: meshconfig.MeshConfig_ProxyPathNormalization_DEFAULT},
		{name: "merge slashes", in: "pathNormalization:\n  normalization: MERGE_SLASHES\n", norm: meshconfig.MeshConfig_ProxyPathNormalization_MERGE_SLASHES},
		{name: "istio configmap mesh key", in: "outboundTrafficPolicy: {mode: REGISTRY_ONLY}\npathNormalization: {normalization: NONE}\nenableTracing: true\n",
			norm: meshconfig.MeshConfig_ProxyPathNormalization_NONE, outbound: "REGISTRY_ONLY", unimpl: "enableTracing: " + notImplemented},
		{name: "unknown field", in: "pathNormalisation: {normalization: NONE}\n", wantErr: `pathNormalisation: unknown field "pathNormalisation"`},
		{name: "bad enum", in: "pathNormalization: {normalization: MERGE}\n", wantErr: "pathNormalization.normalization"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mc, err := ParseMeshConfig("mesh.yaml", []byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), "mesh.yaml: ") {
					t.Fatalf("err = %v, want one naming mesh.yaml and %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := mc.GetPathNormalization().GetNormalization(); got != tt.norm {
				t.Errorf("normalization = %s, want %s", got, tt.norm)
			}
			if got := mc.GetOutboundTrafficPolicy(); (got != nil) != (tt.outbound != "") || got != nil && got.GetMode().String() != tt.outbound {
				t.Errorf("outboundTrafficPolicy = %v, want %q", got, tt.outbound)
			}
			var un []string
			for _, u := range UnimplementedMeshFields(mc) {
				un = append(un, u.String())
			}
			if got := strings.Join(un, "; "); got != tt.unimpl {
				t.Errorf("unimplemented = %q, want %q", got, tt.unimpl)
			}
		})
	}
}
