package e2e

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestConsoleTapInBrowser runs the demo with no load and drives the
// console's live tap view of productpage-v1 in headless Chromium
// (web/tests/tap.test.mjs) while the test sends product pages with its own
// request ids and credentials: the view lists those requests and nothing
// else, never the credentials, and stops when told.
func TestConsoleTapInBrowser(t *testing.T) {
	node, web := browser(t)
	shots := screenshots(t, "console-tap")
	m := startDemo(t)
	consoleURL := "http://" + m.b.controlPlaneIP() + ":20001/"
	const prefix = "tap-console-"

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		c := newClient()
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, m.url("/productpage"), nil)
			req.Header.Set("X-Request-Id", prefix+strconv.Itoa(i))
			req.Header.Set("Authorization", "Bearer "+tapSecrets[0])
			req.Header.Set("Cookie", "session="+tapSecrets[1])
			if resp, err := c.Do(req); err == nil {
				resp.Body.Close()
			}
		}
	}()

	run, cancelRun := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancelRun()
	cmd := exec.CommandContext(run, node, filepath.Join(web, "tests", "tap.test.mjs"))
	cmd.Dir = web
	cmd.Env = append(os.Environ(), "WEFT_CONSOLE_URL="+consoleURL, "WEFT_SCREENSHOTS="+shots, "CHROMIUM="+chromiumPath,
		"WEFT_TAP_PREFIX="+prefix, "WEFT_TAP_SECRETS="+strings.Join(tapSecrets, ","))
	out, err := cmd.CombinedOutput()
	t.Logf("console tap browser test (%s):\n%s", consoleURL, out)
	t.Logf("screenshots: %s", shots)
	if err != nil {
		t.Fatalf("console tap browser test failed: %v", err)
	}
}
