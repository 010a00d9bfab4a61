package e2e

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestCapturePortsServeOnlyTheWorkload reproduces the attack of a local
// process using another workload's outbound capture port — `curl -x
// http://POD_IP:15001 http://reviews:9080/…`, which would be sent with
// that workload's identity and mesh certificate — and shows it refused,
// while the workload's own app still calls through the same port. A
// sidecar told to serve every local process (--outbound-allow any, the
// old behaviour) shows the same curl is a working request.
func TestCapturePortsServeOnlyTheWorkload(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("needs curl")
	}
	b := newBlock(t)
	xds, secure := b.controlPlaneIP()+":15010", b.controlPlaneIP()+":15012"
	start(t, "control-plane", "--data-dir", t.TempDir(), "--xds-address", xds, "--secure-xds-address", secure,
		"--http-address", b.controlPlaneIP()+":15014", "--otlp-grpc-address", "off", "--otlp-http-address", "off")
	waitHTTP(t, b.api()+"/api/v1/proxies", 30*time.Second)
	reviews, productpage, open := b.ip(1, 1), b.ip(1, 2), b.ip(1, 3)
	procs := map[string]*proc{}
	for _, w := range []struct{ name, svc, sa, ip string }{
		{"reviews-v1-1", "reviews", "bookinfo-reviews", reviews},
		{"productpage-v1-1", "productpage", "bookinfo-productpage", productpage},
	} {
		procs[w.svc] = startJoined(t, b.api(), "default", w.sa, "run", "--name", w.name, "--namespace", "default", "--service", w.svc, "--version", "v1", "--port", "http:9080",
			"--ip", w.ip, "--xds-address", xds, "--otlp-endpoint", "off",
			"--", weftBin, "bookinfo", w.svc)
	}
	startJoined(t, b.api(), "default", "open", "proxy", "--name", "open-v1-1", "--namespace", "default", "--service", "open", "--version", "v1", "--port", "http:9000",
		"--ip", open, "--xds-address", xds, "--otlp-endpoint", "off", "--outbound-allow", "any")
	for _, ip := range []string{reviews, productpage, open} {
		waitHTTP(t, "http://"+ip+":15021/healthz/ready", 30*time.Second)
	}

	// curl as another local process would: the mesh name through a
	// sidecar's outbound port, plain HTTP or a CONNECT tunnel, optionally
	// from the workload's own address.
	attack := func(sidecar string, extra ...string) (string, error) {
		args := append([]string{"-sS", "-m", "10", "-x", "http://" + sidecar + ":15001"}, extra...)
		out, err := exec.Command(curl, append(args, "http://reviews:9080/reviews/0")...).CombinedOutput()
		return string(out), err
	}
	// The legitimate path: productpage's own call to reviews, through
	// its sidecar, ends up on the page (pod IP:9080 is the app itself).
	page := func() error {
		resp, err := newClient().Get("http://" + productpage + ":9080/productpage")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if m := servedBy.FindStringSubmatch(string(b)); resp.StatusCode != 200 || m == nil || m[1] != "reviews-v1-1" {
			return fmt.Errorf("product page: HTTP %d, reviews served by %v: %.300s", resp.StatusCode, m, b)
		}
		return nil
	}
	eventually(t, 30*time.Second, page)
	// The control: a sidecar that serves every local process forwards the
	// very same curl to reviews, with its workload's identity.
	eventually(t, 30*time.Second, func() error {
		out, err := attack(open)
		if err != nil || !strings.Contains(out, `"podname"`) {
			return fmt.Errorf("curl through the open sidecar: %v: %.300s", err, out)
		}
		return nil
	})

	for _, tc := range []struct {
		name  string
		extra []string
	}{
		{"absolute-form request", nil},
		{"CONNECT tunnel", []string{"-p"}},
		{"from the pod's own IP", []string{"--interface", productpage}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := attack(productpage, tc.extra...)
			var ee *exec.ExitError
			if !errors.As(err, &ee) {
				t.Fatalf("curl through productpage's sidecar: %v, want refused: %s", err, out)
			}
			if strings.Contains(out, `"podname"`) {
				t.Fatalf("curl through productpage's sidecar reached reviews: %s", out)
			}
			// 52: empty reply, 56: connection reset; either way no answer.
			if code := ee.ExitCode(); code != 52 && code != 56 {
				t.Errorf("curl exit code %d (%s), want 52 or 56: the connection closed unanswered", code, strings.TrimSpace(out))
			}
		})
	}
	// The app still calls through the port after the refusals.
	if err := page(); err != nil {
		t.Errorf("after the refusals: %v", err)
	}
	if out := procs["productpage"].out.String(); !strings.Contains(out, "refused a connection") {
		t.Errorf("productpage's sidecar logged no refusal:\n%s", tail(out, 3000))
	}
}

// TestNetnsWorkloadsLikePods runs two workloads with weft run --netns (as
// root): each app has a network namespace of its own, as in a pod, so its
// port is reachable only through its sidecar, and so is the outbound
// capture port, while the mesh path (a client's sidecar → productpage →
// reviews) works as before.
func TestNetnsWorkloadsLikePods(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("weft run --netns needs root")
	}
	b := newBlock(t)
	secure := "--secure-xds-address=" + b.controlPlaneIP() + ":15012"
	start(t, "control-plane", "--data-dir", t.TempDir(), secure,
		"--http-address", b.controlPlaneIP()+":15014", "--otlp-grpc-address", "off", "--otlp-http-address", "off")
	waitHTTP(t, b.api()+"/api/v1/proxies", 30*time.Second)
	reviews, productpage, client := b.ip(1, 1), b.ip(1, 2), b.ip(1, 3)
	for _, w := range []struct{ name, svc, sa, ip string }{{"reviews-v1-1", "reviews", "bookinfo-reviews", reviews}, {"productpage-v1-1", "productpage", "bookinfo-productpage", productpage}} {
		startJoined(t, b.api(), "default", w.sa, "run", "--netns", "--name", w.name, "--namespace", "default", "--service", w.svc, "--version", "v1", "--port", "http:9080",
			"--ip", w.ip, secure, "--otlp-endpoint", "off", "--", weftBin, "bookinfo", w.svc)
	}
	startJoined(t, b.api(), "default", "client", append([]string{"proxy", "--name", "client-v1-1", "--namespace", "default", "--service", "client", "--version", "v1",
		"--port", "http:9000", "--ip", client, secure, "--otlp-endpoint", "off"}, testIsTheApp()...)...)
	for _, ip := range []string{reviews, productpage, client} {
		waitHTTP(t, "http://"+ip+":15021/healthz/ready", 30*time.Second)
	}
	proxyURL, _ := url.Parse("http://" + client + ":15001")
	c := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL)}, Timeout: 10 * time.Second}
	eventually(t, 30*time.Second, func() error {
		resp, err := c.Get("http://productpage:9080/productpage")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if m := servedBy.FindStringSubmatch(string(body)); resp.StatusCode != 200 || m == nil || m[1] != "reviews-v1-1" {
			return fmt.Errorf("product page through the mesh: HTTP %d, reviews served by %v: %.300s", resp.StatusCode, m, body)
		}
		return nil
	})
	for _, addr := range []string{reviews + ":9080", productpage + ":9080", productpage + ":15001"} {
		t.Run("nothing on the host reaches "+addr, func(t *testing.T) {
			conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err == nil {
				conn.Close()
				t.Fatalf("dialled %s from the host: the app's namespace should hide it", addr)
			}
			if !errors.Is(err, syscall.ECONNREFUSED) {
				t.Errorf("dial %s: %v, want connection refused", addr, err)
			}
		})
	}
}
