package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// chromiumPath is Debian's chromium, which .ci/run installs.
const chromiumPath = "/usr/bin/chromium"

// TestConsoleInBrowser starts the demo with a steady load and drives the
// console in headless Chromium (web/tests/console.test.mjs): the graph
// lists Bookinfo's workloads with traffic, the traffic shifting wizard
// moves reviews to 50/50 v1/v3, and a trace opens with its spans.
// Screenshots go to $WEFT_ARTIFACTS/console (else a temporary directory
// kept when the test fails); their path is logged.
func TestConsoleInBrowser(t *testing.T) {
	node, web := browser(t)
	shots := screenshots(t, "console")

	m := startDemo(t)
	consoleURL := "http://" + m.b.controlPlaneIP() + ":20001/"
	// The demo runs with --no-load; the graph needs steady traffic: about
	// 10 requests a second through the ingress, as the demo's own load.
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		c := newClient()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				_, _, _ = m.get(c, "/productpage")
			}
		}
	}()

	run, cancelRun := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancelRun()
	cmd := exec.CommandContext(run, node, filepath.Join(web, "tests", "console.test.mjs"))
	cmd.Dir = web
	cmd.Env = append(os.Environ(), "WEFT_CONSOLE_URL="+consoleURL, "WEFT_SCREENSHOTS="+shots, "CHROMIUM="+chromiumPath)
	out, err := cmd.CombinedOutput()
	t.Logf("console browser test (%s):\n%s", consoleURL, out)
	t.Logf("screenshots: %s", shots)
	if err != nil {
		t.Fatalf("console browser test failed: %v", err)
	}
	if strings.Contains(string(out), "SKIP") {
		t.Log("some steps were skipped; see SKIP above")
	}
}

// browser skips the test unless Node.js, Debian's chromium and
// playwright-core are there; it returns node's path and web/'s.
func browser(t *testing.T) (node, web string) {
	t.Helper()
	if testing.Short() {
		t.Skip("browser test: skipped in -short mode")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("browser test needs Node.js (node not found on PATH)")
	}
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skipf("browser test needs Debian's chromium at %s (apt-get install -y chromium; .ci/run does)", chromiumPath)
	}
	if web, err = filepath.Abs("../../web"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(web, "node_modules", "playwright-core")); err != nil {
		t.Skipf("browser test needs playwright-core: run `npm ci` in %s (.ci/run does)", web)
	}
	return node, web
}

// screenshots is where a browser test keeps its screenshots:
// $WEFT_ARTIFACTS/NAME, else a temporary directory.
func screenshots(t *testing.T, name string) string {
	if dir := os.Getenv("WEFT_ARTIFACTS"); dir != "" {
		return filepath.Join(dir, name)
	}
	return filepath.Join(t.TempDir(), name)
}

// TestConsoleLoginInBrowser runs the console with the token strategy (what
// a caller from another host gets) in a real browser: only the login form
// until a login, a wrong token refused, the admin token lets in, log out.
func TestConsoleLoginInBrowser(t *testing.T) {
	node, web := browser(t)
	b := newBlock(t)
	dataDir := t.TempDir()
	console := b.controlPlaneIP() + ":20001"
	start(t, "control-plane", "--data-dir", dataDir, "--xds-address", "off", "--http-address", b.controlPlaneIP()+":15014",
		"--secure-xds-address", "off", "--otlp-grpc-address", "off", "--otlp-http-address", "off",
		"--console-address", console, "--console-auth", "token")
	waitHTTP(t, "http://"+console+"/", 30*time.Second)
	run, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	shots := screenshots(t, "console-login")
	cmd := exec.CommandContext(run, node, filepath.Join(web, "tests", "login.test.mjs"))
	cmd.Dir = web
	cmd.Env = append(os.Environ(), "WEFT_CONSOLE_URL=http://"+console+"/", "WEFT_ADMIN_TOKEN="+adminToken(t, dataDir),
		"WEFT_SCREENSHOTS="+shots, "CHROMIUM="+chromiumPath)
	out, err := cmd.CombinedOutput()
	t.Logf("console login browser test:\n%s", out)
	if err != nil {
		t.Fatalf("console login browser test failed: %v", err)
	}
}

// TestConsoleProxylessInBrowser runs `weft demo --app temperature
// --proxyless` and checks in headless Chromium (web/tests/proxyless.test.mjs)
// that the console's workload list shows the proxyless gRPC apps as such,
// synced, and that a converter's page shows its xDS subscriptions.
func TestConsoleProxylessInBrowser(t *testing.T) {
	node, web := browser(t)
	shots := screenshots(t, "console-proxyless")
	b := newBlock(t)
	demo := start(t, "demo", "--app", "temperature", "--proxyless", "--no-load", "--ip-base", b.ipBase(), "--ingress", b.ingress(),
		"--control-plane-ip", b.controlPlaneIP(), "--data-dir", t.TempDir())
	t.Cleanup(func() { demo.stop(syscall.SIGINT, 20*time.Second) })
	eventually(t, 60*time.Second, func() error {
		c, err := getTemperature(b)
		if err != nil {
			return err
		}
		if c.code != 200 {
			return fmt.Errorf("got %d %s", c.code, c.raw)
		}
		return nil
	})
	run, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(run, node, filepath.Join(web, "tests", "proxyless.test.mjs"))
	cmd.Dir = web
	cmd.Env = append(os.Environ(), "WEFT_CONSOLE_URL=http://"+b.controlPlaneIP()+":20001/", "WEFT_SCREENSHOTS="+shots, "CHROMIUM="+chromiumPath)
	out, err := cmd.CombinedOutput()
	t.Logf("console proxyless browser test:\n%s", out)
	t.Logf("screenshots: %s", shots)
	if err != nil {
		t.Fatalf("console proxyless browser test failed: %v", err)
	}
}
