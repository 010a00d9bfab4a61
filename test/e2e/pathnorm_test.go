package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestPathNormalization: with meshConfig.pathNormalization, a DENY of
// /logout also blocks the paths that mean /logout after normalization, and
// the app receives the normalized path; NONE keeps paths as received. The
// requests are raw request lines (Go's client would clean the paths), from
// a client sidecar's capture port through the app's sidecar.
func TestPathNormalization(t *testing.T) {
	type req struct {
		target string
		status int
		app    string // the path the app receives when status is 200
	}
	tests := []struct {
		normalization string
		reqs          []req
	}{
		{"NONE", []req{
			{"/logout", 403, ""},
			{"/static/../logout", 200, "/static/../logout"},
			{"/./logout", 200, "/./logout"},
			{"//logout", 200, "//logout"},
			{"/%6Cogout", 200, "/%6Cogout"},
		}},
		{"BASE", []req{
			// The security review's bypass: percent-encoded unreserved
			// characters mean the characters themselves (RFC 3986 2.3),
			// so they are decoded before the policy matches.
			{"/%6Cogout", 403, ""},
			{"/logou%74", 403, ""},
			{"/%6c%6F%67%6f%75%74", 403, ""},
			{"/static/%2E%2E/%6Cogout", 403, ""},
			{"/%7Euser/%41", 200, "/~user/A"},
			{"/a%2Fb%3F", 200, "/a%2Fb%3F"},
			{"/logout", 403, ""},
			{"/static/../logout", 403, ""},
			{"/./logout", 403, ""},
			{"/static/%2E%2e/logout", 403, ""},
			{"/static/../public?next=/../logout", 200, "/public?next=/../logout"},
			{`/a\b`, 200, "/a/b"},
			{"//logout", 200, "//logout"},
		}},
		{"MERGE_SLASHES", []req{
			{"//logout", 403, ""},
			{"/static/..//logout", 403, ""},
			{"/a//b/./c", 200, "/a/b/c"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.normalization, func(t *testing.T) {
			client := pathMesh(t, tt.normalization)
			for _, r := range tt.reqs {
				var status int
				var body string
				eventually(t, 20*time.Second, func() error {
					var err error
					status, body, err = rawGet(client, r.target, "pathapp:8080")
					if err != nil {
						return err
					}
					if status != r.status && (status == 404 || status == 503) {
						return fmt.Errorf("GET %s: %d (config not there yet?)", r.target, status)
					}
					return nil
				})
				if status != r.status || r.status == 200 && body != r.app {
					t.Errorf("%s: GET %s: %d, app got %q; want %d, %q", tt.normalization, r.target, status, body, r.status, r.app)
				}
			}
		})
	}
}

// pathMesh starts a control plane with the given pathNormalization, an
// app (pathapp, answering with the request target it got) with its
// sidecar, a DENY of /logout for it, and a client sidecar; it returns the
// client's capture address once the policy is in force.
func pathMesh(t *testing.T, normalization string) string {
	t.Helper()
	b := newBlock(t)
	dir := t.TempDir()
	meshFile := filepath.Join(dir, "mesh.yaml")
	if err := os.WriteFile(meshFile, []byte("pathNormalization:\n  normalization: "+normalization+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	xds := b.controlPlaneIP() + ":15010"
	start(t, "control-plane", "--data-dir", filepath.Join(dir, "data"), "--http-address", b.controlPlaneIP()+":15014",
		"--secure-xds-address", b.controlPlaneIP()+":15012", "--otlp-grpc-address", "off", "--otlp-http-address", "off", "--mesh-config", meshFile)
	waitHTTP(t, b.api()+"/api/v1/proxies", 30*time.Second)

	appIP := b.ip(1, 1)
	ln, err := net.Listen("tcp", net.JoinHostPort(appIP, "8080"))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.RequestURI) })}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	startJoined(t, b.api(), "default", "pathapp", "proxy", "--name", "pathapp-v1-1", "--namespace", "default", "--service", "pathapp", "--version", "v1",
		"--port", "http:8080", "--ip", appIP, "--xds-address", xds, "--otlp-endpoint", "off")
	client := b.ip(1, 9)
	startJoined(t, b.api(), "default", "client", append([]string{"proxy", "--name", "client-v1-1", "--namespace", "default", "--service", "client", "--version", "v1",
		"--port", "http:9000", "--ip", client, "--xds-address", xds, "--otlp-endpoint", "off"}, testIsTheApp()...)...)
	policy := filepath.Join(dir, "deny-logout.yaml")
	if err := os.WriteFile(policy, []byte(`apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-logout, namespace: default}
spec:
  selector: {matchLabels: {app: pathapp}}
  action: DENY
  rules:
  - to: [{operation: {paths: [/logout]}}]
`), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := runWeft(b.api(), "apply", "-f", policy); err != nil {
		t.Fatalf("weft apply: %v\n%s", err, out)
	}
	capture := net.JoinHostPort(client, "15001")
	eventually(t, 30*time.Second, func() error {
		if status, _, err := rawGet(capture, "/logout", "pathapp:8080"); err != nil || status != 403 {
			return fmt.Errorf("GET /logout: %d, %v; want 403 once the policy is in force", status, err)
		}
		return nil
	})
	return capture
}

// rawGet sends "GET target" as written, on a new connection to addr, and
// returns the status and body.
func rawGet(addr, target, host string) (int, string, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return 0, "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", target, host); err != nil {
		return 0, "", err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}
