package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/weft-mesh/weft/internal/controlplane/api"
	"github.com/weft-mesh/weft/internal/controlplane/xdsserver"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files")

// fakeMesh serves a recorded productpage admin interface and a control
// plane API listing it.
func fakeMesh(t *testing.T) string {
	t.Helper()
	dir := filepath.Join("testdata", "proxy-config")
	adminMux := http.NewServeMux()
	adminMux.HandleFunc("GET /config_dump", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, filepath.Join(dir, "config_dump.json"))
	})
	adminMux.HandleFunc("GET /clusters", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("format") != "json" {
			http.Error(w, "want format=json", http.StatusBadRequest)
			return
		}
		http.ServeFile(w, r, filepath.Join(dir, "clusters.json"))
	})
	adminSrv := httptest.NewServer(adminMux)
	t.Cleanup(adminSrv.Close)
	cp := http.NewServeMux()
	cp.HandleFunc("GET "+api.ProxiesPath, func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(api.ProxiesResponse{Proxies: []xdsserver.ProxyStatus{
			{ID: "sidecar~127.0.1.1~productpage-v1-1.default~default.svc.cluster.local", Name: "productpage-v1-1",
				Namespace: "default", Type: "sidecar", IP: "127.0.1.1", AdminAddress: strings.TrimPrefix(adminSrv.URL, "http://")},
			{ID: "sidecar~127.0.1.2~twin.default~default.svc.cluster.local", Name: "twin", Namespace: "default"},
			{ID: "sidecar~127.0.1.3~twin.other~other.svc.cluster.local", Name: "twin", Namespace: "other"},
			{ID: "sidecar~127.0.1.9~client-1.default~default.svc.cluster.local", Name: "client-1", Namespace: "default", Type: xdsserver.TypeProxyless},
		}})
	})
	cpSrv := httptest.NewServer(cp)
	t.Cleanup(cpSrv.Close)
	return cpSrv.URL
}

func TestProxyConfigGolden(t *testing.T) {
	cp := fakeMesh(t)
	tests := []struct {
		golden string
		args   []string
	}{
		{"listeners", []string{"listeners", "productpage-v1-1.default"}},
		{"routes", []string{"routes", "productpage-v1-1"}},
		{"clusters", []string{"clusters", "productpage-v1-1"}},
		{"endpoints", []string{"endpoints", "productpage-v1-1"}},
		{"listeners-json", []string{"listeners", "productpage-v1-1", "-o", "json"}},
		{"endpoints-json", []string{"endpoints", "productpage-v1-1", "-o", "json"}},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			var out, errOut bytes.Buffer
			args := append([]string{"proxy-config", "--control-plane", cp}, tt.args...)
			code := RunEnv(context.Background(), &Env{Args: args, Stdout: &out, Stderr: &errOut, Getenv: func(string) string { return "" }})
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut.String())
			}
			golden := filepath.Join("testdata", "proxy-config", tt.golden+".golden")
			if *updateGolden {
				if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(string(want), out.String()); diff != "" {
				t.Errorf("output differs from %s (-want +got; rerun with -update if intended):\n%s", golden, diff)
			}
		})
	}
}

func TestProxyConfigErrors(t *testing.T) {
	cp := fakeMesh(t)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"listeners", "nobody"}, `no connected proxy named "nobody"`},
		{[]string{"listeners", "twin"}, "2 proxies are named"},
		{[]string{"listeners", "twin.other"}, "did not announce its admin address"},
		{[]string{"routes", "client-1"}, "is a proxyless gRPC app"},
		{[]string{"secrets", "productpage-v1-1"}, "usage: weft proxy-config"},
		{[]string{"routes", "productpage-v1-1", "-o", "yaml"}, `-o "yaml": want json`},
	}
	for _, tt := range tests {
		var out, errOut bytes.Buffer
		args := append([]string{"proxy-config", "--control-plane", cp}, tt.args...)
		if code := RunEnv(context.Background(), &Env{Args: args, Stdout: &out, Stderr: &errOut, Getenv: func(string) string { return "" }}); code == 0 {
			t.Errorf("%v: exit 0", tt.args)
		}
		if !strings.Contains(errOut.String(), tt.want) {
			t.Errorf("%v: stderr %q lacks %q", tt.args, errOut.String(), tt.want)
		}
	}
}
