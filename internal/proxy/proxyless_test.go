package proxy

import (
	"encoding/json"
	"net/netip"
	"os"
	"testing"
)

// TestProxylessBootstrap: without a token the bootstrap names the
// plaintext xDS address and a node with GENERATOR=grpc and the workload's
// identity, no certificate provider; the app's environment points at it;
// Close removes it.
func TestProxylessBootstrap(t *testing.T) {
	p, err := StartProxyless(Options{Name: "echo-v1-1", Namespace: "prod", Service: "echo", Version: "v1",
		IP: netip.MustParseAddr("127.0.9.4"), XDSAddress: "127.0.0.1:25010", Ports: []Port{{Name: "grpc", Number: 50051}}})
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(p.BootstrapFile())
	if err != nil {
		t.Fatal(err)
	}
	var boot struct {
		XDSServers []struct {
			ServerURI string `json:"server_uri"`
		} `json:"xds_servers"`
		Node struct {
			ID       string         `json:"id"`
			Metadata map[string]any `json:"metadata"`
		} `json:"node"`
		Template  string         `json:"server_listener_resource_name_template"`
		Providers map[string]any `json:"certificate_providers"`
	}
	if err := json.Unmarshal(data, &boot); err != nil {
		t.Fatal(err)
	}
	md := boot.Node.Metadata
	labels, _ := md["LABELS"].(map[string]any)
	switch {
	case len(boot.XDSServers) != 1 || boot.XDSServers[0].ServerURI != "127.0.0.1:25010":
		t.Errorf("xds_servers: %+v", boot.XDSServers)
	case boot.Node.ID != "sidecar~127.0.9.4~echo-v1-1.prod~prod.svc.cluster.local":
		t.Errorf("node id %q", boot.Node.ID)
	case md["GENERATOR"] != "grpc" || md["NAMESPACE"] != "prod" || md["INSTANCE_IPS"] != "127.0.9.4" || md["WEFT_MTLS"] != nil:
		t.Errorf("metadata %v", md)
	case labels["app"] != "echo" || labels["version"] != "v1":
		t.Errorf("labels %v", labels)
	case boot.Template != "xds.istio.io/grpc/lds/inbound/%s" || boot.Providers != nil:
		t.Errorf("template %q, providers %v", boot.Template, boot.Providers)
	}
	env := p.Env()
	if env["GRPC_XDS_BOOTSTRAP"] != p.BootstrapFile() || env["POD_IP"] != "127.0.9.4" || env["PORT"] != "50051" || env["POD_NAME"] != "echo-v1-1" {
		t.Errorf("env %v", env)
	}
	p.Close()
	if _, err := os.Stat(p.BootstrapFile()); !os.IsNotExist(err) {
		t.Errorf("after Close the bootstrap is still there (%v)", err)
	}
}

// TestProxylessIn: StartProxylessIn writes the bootstrap into the given
// directory (the grpc-agent's shared emptyDir), creating it, and Close
// leaves it there for the app.
func TestProxylessIn(t *testing.T) {
	dir := t.TempDir() + "/istio-xds"
	p, err := StartProxylessIn(Options{Name: "echo-v1-1", IP: netip.MustParseAddr("127.0.9.5"), XDSAddress: "127.0.0.1:25010"}, dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := dir + "/" + ProxylessBootstrapFile; p.BootstrapFile() != want || p.Env()["GRPC_XDS_BOOTSTRAP"] != want {
		t.Errorf("bootstrap %s (env %s), want %s", p.BootstrapFile(), p.Env()["GRPC_XDS_BOOTSTRAP"], want)
	}
	// The app's container reads it as another user (umask aside).
	if fi, err := os.Stat(p.BootstrapFile()); err != nil || fi.Mode().Perm()&0o004 == 0 && fi.Mode().Perm()&0o040 == 0 {
		t.Errorf("bootstrap in the shared directory: %v, mode %v; want others to read it", err, fi.Mode())
	}
	p.Close()
	if _, err := os.Stat(p.BootstrapFile()); err != nil {
		t.Errorf("after Close the shared directory's bootstrap is gone: %v", err)
	}
}
