package e2e

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const authVS = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews}
`

// TestWritesNeedCredentials runs a standalone control plane: a write or a
// join token with no or a wrong credential is refused (401) and changes
// nothing; the CLI of the user who runs the control plane applies, deletes
// and mints tokens with no extra step; another user's CLI is refused; the
// console with the token strategy (what a caller from another host gets)
// lets nobody in without a login, and its login takes the admin token.
func TestWritesNeedCredentials(t *testing.T) {
	b := newBlock(t)
	dataDir := t.TempDir()
	console := b.controlPlaneIP() + ":20001"
	start(t, "control-plane", "--data-dir", dataDir,
		"--http-address", b.controlPlaneIP()+":15014", "--secure-xds-address", "off",
		"--otlp-grpc-address", "off", "--otlp-http-address", "off",
		"--console-address", console, "--console-auth", "token")
	waitHTTP(t, b.api()+"/api/v1/proxies", 30*time.Second)
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil}}

	// Raw HTTP, as any process or pod could send it.
	for _, auth := range []string{"", "Bearer weft-admin.guessed", "Bearer some-kubernetes-token"} {
		for _, req := range []struct{ method, path, body string }{
			{"POST", "/api/v1/config", authVS},
			{"DELETE", "/api/v1/config", authVS},
			{"POST", "/api/v1/tokens", `{"namespace":"default","serviceAccount":"bookinfo-reviews"}`},
		} {
			code, body := send(t, c, req.method, b.api()+req.path, auth, req.body)
			var e struct{ Error string }
			if code != http.StatusUnauthorized || json.Unmarshal([]byte(body), &e) != nil || e.Error == "" {
				t.Errorf("%s %s with %q: %d %s, want 401 with a JSON error", req.method, req.path, auth, code, body)
			}
		}
	}
	if _, body := send(t, c, "GET", b.api()+"/api/v1/config", "", ""); body != "{\"objects\":[]}\n" {
		t.Fatalf("after refused writes the config is %s, want empty", body)
	}

	// The user who runs the control plane: no extra step.
	if out, err := runWeft(b.api(), "apply", "-f", writeFile(t, "vs.yaml", authVS)); err != nil || !strings.Contains(out, "created") {
		t.Fatalf("weft apply: %v\n%s", err, out)
	}
	if out, err := runWeft(b.api(), "token", "create", "--service-account", "bookinfo-reviews"); err != nil || !strings.HasPrefix(out, "weft.v1.") {
		t.Fatalf("weft token create: %v\n%s", err, out)
	}
	// Another user on the host (another home, no access to the data dir).
	out, err := runWeftAs(t.TempDir(), b.api(), "token", "create", "--service-account", "bookinfo-reviews")
	if err == nil || !strings.Contains(out, "needs a credential") || strings.Contains(out, "weft.v1.") {
		t.Errorf("another user's weft token create: %v\n%s", err, out)
	}
	if out, err := runWeftAs(t.TempDir(), b.api(), "delete", "-f", writeFile(t, "vs.yaml", authVS)); err == nil || !strings.Contains(out, "needs a credential") {
		t.Errorf("another user's weft delete: %v\n%s", err, out)
	}
	// The admin credentials file works from anywhere it is copied.
	if out, err := runWeftAs(t.TempDir(), b.api(), "delete", "-f", writeFile(t, "vs.yaml", authVS), "--credentials", dataDir); err != nil {
		t.Errorf("weft delete --credentials DATA_DIR: %v\n%s", err, out)
	}

	// From another host: an admin client certificate from the mesh CA, over
	// https on the same port. The local admin creates the file.
	credsFile := filepath.Join(t.TempDir(), "admin.json")
	https := "https://" + b.controlPlaneIP() + ":15014"
	if out, err := runWeft(b.api(), "credentials", "create", "--out", credsFile, "--server", https); err != nil {
		t.Fatalf("weft credentials create: %v\n%s", err, out)
	}
	if out, err := runWeftAs(t.TempDir(), "", "apply", "--credentials", credsFile, "-f", writeFile(t, "vs.yaml", authVS)); err != nil || !strings.Contains(out, "created") {
		t.Errorf("weft apply --credentials (mTLS to %s): %v\n%s", https, err, out)
	}
	if out, err := runWeftAs(t.TempDir(), "", "get", "vs", "--credentials", credsFile); err != nil || !strings.Contains(out, "reviews") {
		t.Errorf("weft get over https: %v\n%s", err, out)
	}
	// Without a client certificate, https changes nothing either.
	insecureTLS := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	if code, body := send(t, insecureTLS, "DELETE", https+"/api/v1/config", "", authVS); code != http.StatusUnauthorized {
		t.Errorf("https DELETE without a client certificate: %d %s, want 401", code, body)
	}
	if out, err := runWeft(b.api(), "delete", "-f", writeFile(t, "vs.yaml", authVS)); err != nil {
		t.Fatalf("weft delete: %v\n%s", err, out)
	}

	// The console with the token strategy: login first.
	consoleURL := "http://" + console
	waitHTTP(t, consoleURL+"/", 10*time.Second)
	if code, body := send(t, c, "GET", consoleURL+"/api/auth", "", ""); code != 200 || !strings.Contains(body, `"authenticated":false`) {
		t.Errorf("console /api/auth before login: %d %s", code, body)
	}
	for _, m := range []string{"GET", "POST"} {
		if code, body := send(t, c, m, consoleURL+"/api/v1/config", "", authVS); code != http.StatusUnauthorized || !strings.Contains(body, "log in") {
			t.Errorf("console %s /api/v1/config before login: %d %s", m, code, body)
		}
	}
	if code, body := send(t, c, "POST", consoleURL+"/api/auth/login", "", `{"token":"weft-admin.guessed"}`); code != http.StatusUnauthorized {
		t.Errorf("console login with a wrong token: %d %s", code, body)
	}
	req, _ := http.NewRequest("POST", consoleURL+"/api/auth/login", strings.NewReader(`{"token":"`+adminToken(t, dataDir)+`"}`))
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || len(resp.Cookies()) != 1 {
		t.Fatalf("console login with the admin token: %d, cookies %v", resp.StatusCode, resp.Cookies())
	}
	req, _ = http.NewRequest("POST", consoleURL+"/api/v1/config?source=console", strings.NewReader(authVS))
	req.Header.Set("Origin", consoleURL)
	req.AddCookie(resp.Cookies()[0])
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "created") {
		t.Errorf("console apply after login: %d %s", resp.StatusCode, body)
	}
}

// send makes one request and returns its status and body.
func send(t *testing.T, c *http.Client, method, url, auth, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data)
}

// runWeftAs runs the CLI as a user whose weft home is home, against api
// ("": the one its flags name).
func runWeftAs(home, api string, args ...string) (string, error) {
	cmd := exec.Command(weftBin, args...)
	cmd.Env = append(os.Environ(), "WEFT_HOME="+home)
	if api != "" {
		cmd.Env = append(cmd.Env, "WEFT_CONTROL_PLANE="+api)
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// writeFile writes a temporary file and returns its path.
func writeFile(t *testing.T, name, data string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(fmt.Errorf("writing %s: %w", p, err))
	}
	return p
}
