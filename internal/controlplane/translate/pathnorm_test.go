package translate

import (
	"testing"

	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	meshconfig "istio.io/api/mesh/v1alpha1"
)

// TestPathNormalization: every HTTP connection manager (outbound, inbound
// and their inline route configs) carries the fields istiod writes for the
// mesh's pathNormalization.
func TestPathNormalization(t *testing.T) {
	type fields struct {
		normalize, merge bool
		action           hcm.HttpConnectionManager_PathWithEscapedSlashesAction
	}
	tests := []struct {
		n    meshconfig.MeshConfig_ProxyPathNormalization_NormalizationType
		want fields
	}{
		{meshconfig.MeshConfig_ProxyPathNormalization_DEFAULT, fields{true, false, hcm.HttpConnectionManager_KEEP_UNCHANGED}},
		{meshconfig.MeshConfig_ProxyPathNormalization_NONE, fields{false, false, hcm.HttpConnectionManager_KEEP_UNCHANGED}},
		{meshconfig.MeshConfig_ProxyPathNormalization_BASE, fields{true, false, hcm.HttpConnectionManager_KEEP_UNCHANGED}},
		{meshconfig.MeshConfig_ProxyPathNormalization_MERGE_SLASHES, fields{true, true, hcm.HttpConnectionManager_KEEP_UNCHANGED}},
		{meshconfig.MeshConfig_ProxyPathNormalization_DECODE_AND_MERGE_SLASHES, fields{true, true, hcm.HttpConnectionManager_UNESCAPE_AND_FORWARD}},
	}
	for _, tt := range tests {
		t.Run(tt.n.String(), func(t *testing.T) {
			out := buildFor(t, "", Mesh{PathNormalization: tt.n})
			n := 0
			eachHCM(out, func(l *listener.Listener, m *hcm.HttpConnectionManager) {
				n++
				if m.GetNormalizePath() == nil {
					t.Errorf("%s: normalize_path unset (Envoy's default depends on its runtime)", l.GetName())
				}
				got := fields{m.GetNormalizePath().GetValue(), m.GetMergeSlashes(), m.GetPathWithEscapedSlashesAction()}
				if got != tt.want {
					t.Errorf("%s: %+v, want %+v", l.GetName(), got, tt.want)
				}
			})
			if n < 2 {
				t.Fatalf("%d HTTP connection managers, want outbound and inbound ones", n)
			}
		})
	}
}
