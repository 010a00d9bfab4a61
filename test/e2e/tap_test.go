package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// tapEvent is the part of a `weft tap -o json` line the test reads.
type tapEvent struct {
	Proxy       string `json:"proxy"`
	Direction   string `json:"direction"`
	Source      string `json:"source"`
	Destination string `json:"destination"`
	Method      string `json:"method"`
	Path        string `json:"path"`
	Status      int    `json:"status"`
	RequestID   string `json:"requestId"`
	TraceID     string `json:"traceId"`
	Error       string `json:"error"`
}

// tapSecrets are credentials the test's requests carry, which a tap must never show.
var tapSecrets = []string{"tap-secret-bearer-7f3a", "tap-secret-cookie-91c2"}

// tapWhileSending runs `weft tap args…` and sends product pages through
// the ingress, each with its own x-request-id and with credentials in
// authorization and cookie, until the tap exits (its --max) or 60s pass.
// It returns the tap's stdout and the request ids it sent.
func tapWhileSending(t *testing.T, m *mesh, prefix string, args ...string) (string, map[string]bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, weftBin, append([]string{"tap"}, args...)...)
	cmd.Env = append(os.Environ(), "WEFT_CONTROL_PLANE="+m.b.api())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting weft tap: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	sent := map[string]bool{}
	for i := 0; ; i++ {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("weft tap %v: %v\nstdout:\n%s\nstderr:\n%s", args, err, stdout.String(), stderr.String())
			}
			return stdout.String(), sent
		case <-time.After(150 * time.Millisecond):
		}
		id := fmt.Sprintf("%s-%d", prefix, i)
		req, _ := http.NewRequest(http.MethodGet, m.url("/productpage"), nil)
		req.Header.Set("X-Request-Id", id)
		req.Header.Set("Authorization", "Bearer "+tapSecrets[0])
		req.Header.Set("Cookie", "session="+tapSecrets[1])
		sent[id] = true
		resp, err := m.client.Do(req)
		if err != nil {
			t.Fatalf("product page: %v", err)
		}
		resp.Body.Close()
	}
}

// parseTap decodes `weft tap -o json` lines.
func parseTap(t *testing.T, out string) []tapEvent {
	t.Helper()
	var evs []tapEvent
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var e tapEvent
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("weft tap -o json printed a line that is not JSON: %v: %q", err, sc.Text())
		}
		evs = append(evs, e)
	}
	return evs
}

// TestTap runs the demo with no load generator, so the only traffic is
// the test's: weft tap shows exactly the requests the test made while it
// ran (its filters applied in the proxies), never their credentials, and
// only to the admin; a proxy's tap endpoint refuses anyone without the
// control plane's token.
func TestTap(t *testing.T) {
	m := startDemo(t)
	m.waitRunning() // the demo's own start-up checks load the page until then

	t.Run("a service's proxies, filtered by path", func(t *testing.T) {
		out, sent := tapWhileSending(t, m, "tap-svc", "reviews", "--path", "/reviews/", "--max", "6", "-o", "json")
		evs := parseTap(t, out)
		if len(evs) != 6 {
			t.Fatalf("want 6 exchanges (--max 6), got %d:\n%s", len(evs), out)
		}
		for _, e := range evs {
			if e.Error != "" {
				t.Errorf("tap reported an error: %+v", e)
				continue
			}
			if !sent[e.RequestID] {
				t.Errorf("tap showed a request the test did not make (request id %q): %+v", e.RequestID, e)
			}
			if !strings.HasPrefix(e.Proxy, "reviews-v") || e.Direction != "inbound" || !strings.HasPrefix(e.Path, "/reviews/") ||
				e.Method != "GET" || e.Status != 200 || !strings.HasPrefix(e.Source, "productpage") || !strings.HasPrefix(e.Destination, "reviews-v") || e.TraceID == "" {
				t.Errorf("tap of reviews --path /reviews/ showed %+v, want productpage → reviews GET /reviews/… 200 with a trace id, seen by a reviews proxy", e)
			}
		}
		for _, s := range tapSecrets {
			if strings.Contains(out, s) {
				t.Errorf("tap showed a credential %q:\n%s", s, out)
			}
		}
	})

	t.Run("a workload, by method and path, as a table", func(t *testing.T) {
		out, _ := tapWhileSending(t, m, "tap-wl", "productpage-v1", "--method", "GET", "--path", "/productpage", "--max", "3")
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 3 {
			t.Fatalf("want 3 lines (--max 3), got %d:\n%s", len(lines), out)
		}
		for _, l := range lines {
			if !strings.Contains(l, " in ") || !strings.Contains(l, ":method=GET") || !strings.Contains(l, ":path=/productpage") ||
				!strings.Contains(l, ":status=200") || !strings.Contains(l, "-> productpage-v1") {
				t.Errorf("tap line %q: want an inbound GET /productpage 200 to productpage-v1", l)
			}
		}
		for _, s := range tapSecrets {
			if strings.Contains(out, s) {
				t.Errorf("tap showed a credential %q (the request carried it in authorization/cookie):\n%s", s, out)
			}
		}
	})

	t.Run("only the admin may tap", func(t *testing.T) {
		out, err := runWeftAs(t.TempDir(), m.b.api(), "tap", "reviews", "--max", "1")
		if err == nil || !strings.Contains(out, "needs a credential") {
			t.Errorf("another user's weft tap: %v\n%s", err, out)
		}
		var list struct {
			Proxies []struct {
				Name         string `json:"name"`
				AdminAddress string `json:"adminAddress"`
			} `json:"proxies"`
		}
		c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil}}
		resp, err := c.Get(m.b.api() + "/api/v1/proxies")
		if err != nil {
			t.Fatal(err)
		}
		err = json.NewDecoder(resp.Body).Decode(&list)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("proxies: %v", err)
		}
		var admin string
		for _, p := range list.Proxies {
			if strings.HasPrefix(p.Name, "reviews-v1") {
				admin = p.AdminAddress
			}
		}
		if admin == "" {
			t.Fatalf("no admin address for reviews-v1 in %+v", list.Proxies)
		}
		for _, auth := range []string{"", "Bearer forged.token", "Bearer " + tapSecrets[0]} {
			req, _ := http.NewRequest(http.MethodGet, "http://"+admin+"/tap", nil)
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("GET %s/tap with %q: %s, want 403", admin, auth, resp.Status)
			}
		}
	})
}
