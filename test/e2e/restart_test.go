package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// reviewsGateway sends /reviews/ straight from the ingress to the reviews service.
const reviewsGateway = `apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: reviews-gateway
spec:
  selector:
    istio: ingressgateway
  servers:
  - port: {number: 8080, name: http, protocol: HTTP}
    hosts: ["*"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews-ingress
spec:
  hosts: ["*"]
  gateways: [reviews-gateway]
  http:
  - match:
    - uri: {prefix: /reviews/}
    route:
    - destination: {host: reviews, port: {number: 9080}}
`

// TestControlPlaneRestart shows that proxies keep serving on their last config
// while the control plane is down, and resync when it comes back.
func TestControlPlaneRestart(t *testing.T) {
	b := newBlock(t)
	dataDir := t.TempDir()
	xds := b.controlPlaneIP() + ":15010"
	cpArgs := []string{"control-plane", "--data-dir", dataDir, "--xds-address", xds,
		"--http-address", b.controlPlaneIP() + ":15014", "--registration-grace", "30s"}
	cp := start(t, cpArgs...)
	waitHTTP(t, b.api()+"/api/v1/proxies", 30*time.Second)

	for i, v := range []string{"v1", "v3"} {
		ip := b.ip(1, i+1)
		start(t, "run", "--name", "reviews-"+v+"-1", "--namespace", "default", "--service", "reviews",
			"--version", v, "--port", "http:9080", "--service-account", "bookinfo-reviews",
			"--ip", ip, "--xds-address", xds, "--", weftBin, "bookinfo", "reviews")
	}
	start(t, "gateway", "--ip", b.ip(0, 1), "--xds-address", xds)
	gw := filepath.Join(t.TempDir(), "gw.yaml")
	if err := os.WriteFile(gw, []byte(reviewsGateway), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := runWeft(b.api(), "apply", "-f", gw); err != nil {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	if out, err := runWeft(b.api(), "apply", "-f", sample(t, "destination-rule-all.yaml")); err != nil {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	client := newClient()
	pod := func() (string, error) { return reviewsPod(client, "http://"+b.ingress()+"/reviews/0") }
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
		if strings.Count(out, "SYNCED") < 3 || strings.Contains(out, "STALE") || strings.Contains(out, "NOT SENT") {
			return fmt.Errorf("not resynced:\n%s", out)
		}
		return nil
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
func reviewsPod(c *http.Client, url string) (string, error) {
	resp, err := c.Get(url)
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
