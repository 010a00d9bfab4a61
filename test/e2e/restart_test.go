package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestControlPlaneRestart shows that proxies keep serving on their last config
// while the control plane is down, and resync when it comes back.
func TestControlPlaneRestart(t *testing.T) {
	b := newBlock(t)
	dataDir := t.TempDir()
	xds := b.controlPlaneIP() + ":15010"
	cpArgs := []string{"control-plane", "--data-dir", dataDir,
		"--http-address", b.controlPlaneIP() + ":15014", "--secure-xds-address", b.controlPlaneIP() + ":15012", "--registration-grace", "30s",
		"--otlp-grpc-address", b.controlPlaneIP() + ":4317", "--otlp-http-address", b.controlPlaneIP() + ":4318"}
	cp := start(t, cpArgs...)
	waitHTTP(t, b.api()+"/api/v1/proxies", 30*time.Second)

	for i, v := range []string{"v1", "v3"} {
		ip := b.ip(1, i+1)
		startJoined(t, b.api(), "default", "bookinfo-reviews", "run", "--name", "reviews-"+v+"-1", "--namespace", "default", "--service", "reviews",
			"--version", v, "--port", "http:9080",
			"--ip", ip, "--xds-address", xds, "--", weftBin, "bookinfo", "reviews")
	}
	// A client sidecar: requests enter its capture port naming reviews:9080.
	client := b.ip(1, 9)
	startJoined(t, b.api(), "default", "client", append([]string{"proxy", "--name", "client-v1-1", "--namespace", "default", "--service", "client", "--version", "v1",
		"--port", "http:9000", "--ip", client, "--xds-address", xds}, testIsTheApp()...)...)
	if out, err := runWeft(b.api(), "apply", "-f", sample(t, "destination-rule-all.yaml")); err != nil {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	hc := newClient()
	pod := func() (string, error) { return reviewsPod(hc, "http://"+client+":15001/reviews/0", "reviews:9080") }
	eventually(t, 30*time.Second, func() error {
		seen := map[string]bool{}
		for range 10 {
			p, err := pod()
			if err != nil {
				return err
			}
			seen[p] = true
		}
		if len(seen) != 2 {
			return fmt.Errorf("want both reviews instances, saw %v", seen)
		}
		return nil
	})
	if out, err := runWeft(b.api(), "apply", "-f", sample(t, "virtual-service-reviews-v3.yaml")); err != nil {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	eventually(t, 2*time.Second, func() error { return onlyPod(pod, "reviews-v3-1", 5) })

	if !cp.stop(syscall.SIGTERM, 10*time.Second) {
		t.Fatal("control plane did not stop on SIGTERM")
	}
	if err := onlyPod(pod, "reviews-v3-1", 30); err != nil {
		t.Fatalf("with the control plane down: %v", err)
	}

	start(t, cpArgs...)
	waitHTTP(t, b.api()+"/api/v1/proxies", 30*time.Second)
	eventually(t, 30*time.Second, func() error {
		out, err := runWeft(b.api(), "proxy-status")
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return allSynced(out, "reviews-v1-1", "reviews-v3-1", "client-v1-1")
	})
	if err := onlyPod(pod, "reviews-v3-1", 10); err != nil {
		t.Fatalf("after the restart (config from the data dir): %v", err)
	}
	if out, err := runWeft(b.api(), "apply", "-f", sample(t, "virtual-service-all-v1.yaml")); err != nil {
		t.Fatalf("apply after restart: %v\n%s", err, out)
	}
	eventually(t, 2*time.Second, func() error { return onlyPod(pod, "reviews-v1-1", 5) })
}

func onlyPod(pod func() (string, error), want string, n int) error {
	for range n {
		p, err := pod()
		if err != nil {
			return err
		}
		if p != want {
			return fmt.Errorf("served by %s, want %s", p, want)
		}
	}
	return nil
}

// reviewsPod calls the reviews API and returns the pod name that answered.
func reviewsPod(c *http.Client, url, host string) (string, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	req.Host = host
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != 200 {
		return "", fmt.Errorf("GET %s: HTTP %d: %.200s", url, resp.StatusCode, body)
	}
	var r struct {
		Podname string `json:"podname"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return "", fmt.Errorf("reviews answer %.200q: %w", body, err)
	}
	return r.Podname, nil
}

// waitHTTP polls url until it answers 200.
func waitHTTP(t *testing.T, url string, bound time.Duration) {
	t.Helper()
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{Proxy: nil}}
	eventually(t, bound, func() error {
		resp, err := c.Get(url)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("GET %s: HTTP %d", url, resp.StatusCode)
		}
		return nil
	})
}

// allSynced checks that proxy-status shows each named proxy with CDS, LDS, EDS and RDS in sync.
func allSynced(out string, names ...string) error {
	for _, name := range names {
		found := false
		for _, line := range strings.Split(out, "\n") {
			if !strings.HasPrefix(line, name+".") && !strings.HasPrefix(line, name+" ") {
				continue
			}
			found = true
			if strings.Count(line, "SYNCED") < 4 {
				return fmt.Errorf("%s not in sync:\n%s", name, out)
			}
		}
		if !found {
			return fmt.Errorf("proxy-status lacks %s:\n%s", name, out)
		}
	}
	return nil
}
