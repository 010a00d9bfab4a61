package translate

import (
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
	meshconfig "istio.io/api/mesh/v1alpha1"
)

// setPathNormalization writes the mesh's pathNormalization into an HTTP
// connection manager with the three fields istiod sets for each option:
// BASE (the default) normalizes the path as RFC 3986 says, MERGE_SLASHES
// also collapses "//", DECODE_AND_MERGE_SLASHES also unescapes %2F and %5C
// first, NONE leaves the path as received.
func setPathNormalization(m *hcm.HttpConnectionManager, n meshconfig.MeshConfig_ProxyPathNormalization_NormalizationType) {
	m.PathWithEscapedSlashesAction = hcm.HttpConnectionManager_KEEP_UNCHANGED
	switch n {
	case meshconfig.MeshConfig_ProxyPathNormalization_NONE:
		m.NormalizePath = wrapperspb.Bool(false)
	case meshconfig.MeshConfig_ProxyPathNormalization_MERGE_SLASHES:
		m.NormalizePath, m.MergeSlashes = wrapperspb.Bool(true), true
	case meshconfig.MeshConfig_ProxyPathNormalization_DECODE_AND_MERGE_SLASHES:
		m.NormalizePath, m.MergeSlashes = wrapperspb.Bool(true), true
		m.PathWithEscapedSlashesAction = hcm.HttpConnectionManager_UNESCAPE_AND_FORWARD
	default: // DEFAULT, BASE
		m.NormalizePath = wrapperspb.Bool(true)
	}
}
