package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
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
	web, err := filepath.Abs("../../web")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(web, "node_modules", "playwright-core")); err != nil {
		t.Skipf("browser test needs playwright-core: run `npm ci` in %s (.ci/run does)", web)
	}
	shots := filepath.Join(t.TempDir(), "console")
	if dir := os.Getenv("WEFT_ARTIFACTS"); dir != "" {
		shots = filepath.Join(dir, "console")
	}

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
