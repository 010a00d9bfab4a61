package xdsserver

import (
	"testing"

	"github.com/weft-mesh/weft/internal/controlplane/translate"
)

// TestAdmitPlaintextMTLS: plaintext xDS strips a node's claimed identity
// (its service account, and for proxies mTLS,
// with its peers' identities), but leaves a proxyless gRPC node its mTLS:
// it always reads plaintext xDS, and its mTLS settings point at its own
// certificate files.
func TestAdmitPlaintextMTLS(t *testing.T) {
	tests := []struct {
		name, generator string
		wantMTLS        bool
	}{
		{"sidecar", "", false},
		{"proxyless gRPC", GeneratorGRPC, true},
	}
	h := startServer(t, nil, 0)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			info := &proxyInfo{generator: tc.generator, proxy: translate.Proxy{ID: "sidecar~127.0.5.1~echo-v1.default~default.svc.cluster.local",
				Name: "echo-v1", Namespace: "default", MTLS: true, ServiceAccount: "echo"}}
			if err := h.srv.admitPlaintext(info); err != nil {
				t.Fatal(err)
			}
			if info.proxy.MTLS != tc.wantMTLS || info.proxy.ServiceAccount != "" {
				t.Errorf("after admitPlaintext: MTLS %v (want %v), service account %q (want none)", info.proxy.MTLS, tc.wantMTLS, info.proxy.ServiceAccount)
			}
		})
	}
}
