package e2e

import (
	"bufio"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// TestBookinfo runs one demo and walks Istio's Bookinfo routing tasks on it,
// then stops it with Ctrl-C and checks that nothing is left behind.
func TestBookinfo(t *testing.T) {
	// Some checks send as productpage does, through its sidecar: the test
	// process is one of productpage's (kubectl exec into its pod).
	m := startDemoEnv(t, []string{"WEFT_OUTBOUND_ALLOW=pid:" + strconv.Itoa(os.Getpid())})

	t.Run("default round robin reaches every version", func(t *testing.T) {
		seen := map[string]int{}
		for i := 0; i < 60 && len(seen) < 3; i++ {
			v, err := m.reviewsVersion(m.client)
			if err != nil {
				t.Fatal(err)
			}
			seen[v]++
		}
		if len(seen) != 3 {
			t.Fatalf("want reviews v1, v2 and v3 within 60 pages, saw %v", seen)
		}
	})

	t.Run("sidecars and the gateway are weft-proxy", func(t *testing.T) {
		checkDataPlaneBinary(t, m)
	})

	t.Run("stars follow the version", func(t *testing.T) {
		checkStars(t, m)
	})

	t.Run("Istio metrics and access logs", func(t *testing.T) {
		checkTelemetry(t, m)
	})

	t.Run("a product page is one trace across every hop", func(t *testing.T) {
		checkTrace(t, m)
	})

	m.apply(sample(t, "destination-rule-all.yaml"))

	t.Run("Telemetry API: access log filter and sampling", func(t *testing.T) {
		checkTelemetryAPI(t, m)
	})

	t.Run("Telemetry API: metric tag overrides", func(t *testing.T) {
		checkMetricTagOverrides(t, m)
	})

	t.Run("all-v1 within 2s", func(t *testing.T) {
		m.apply(sample(t, "virtual-service-all-v1.yaml"))
		applied := time.Now()
		eventually(t, 2*time.Second, func() error {
			for range 5 {
				v, err := m.reviewsVersion(m.client)
				if err != nil {
					return err
				}
				if v != "v1" {
					return fmt.Errorf("served by %s", v)
				}
			}
			return nil
		})
		t.Logf("all-v1 seen on live traffic %s after apply returned", time.Since(applied).Round(time.Millisecond))
		if c := m.count(m.client, 30); c["v1"] != 30 {
			t.Fatalf("want 30 pages from v1, got %v", c)
		}
	})

	t.Run("proxy-status and proxy-config", func(t *testing.T) {
		checkProxyStatus(t, m)
		checkProxyConfigRoutes(t, m)
	})

	t.Run("reviews-50-v3", func(t *testing.T) {
		m.applyRoutes(sample(t, "virtual-service-reviews-50-v3.yaml"))
		waitOnly(t, m, "v1", "v3")
		c := m.count(m.client, 400)
		if c["v2"] != 0 || c["v1"] < 140 || c["v1"] > 260 || c["v3"] < 140 || c["v3"] > 260 {
			t.Fatalf("want v1 and v3 about half each of 400, no v2; got %v", c)
		}
	})

	t.Run("reviews-80-20", func(t *testing.T) {
		m.applyRoutes(sample(t, "virtual-service-reviews-80-20.yaml"))
		waitOnly(t, m, "v1", "v2")
		c := m.count(m.client, 400)
		// 80% of 400 = 320, sd 8: allow ±5 sd.
		if c["v3"] != 0 || c["v1"] < 280 || c["v1"] > 360 {
			t.Fatalf("want about 80%% v1 / 20%% v2 of 400; got %v", c)
		}
	})

	t.Run("reviews-90-10", func(t *testing.T) {
		m.applyRoutes(sample(t, "virtual-service-reviews-90-10.yaml"))
		waitOnly(t, m, "v1", "v2")
		c := m.count(m.client, 400)
		// 90% of 400 = 360, sd 6: allow ±5 sd.
		if c["v3"] != 0 || c["v1"] < 330 || c["v1"] > 390 {
			t.Fatalf("want about 90%% v1 / 10%% v2 of 400; got %v", c)
		}
	})

	t.Run("reviews-test-v2 routes jason to v2", func(t *testing.T) {
		jason := login(t, m, "jason")
		m.applyRoutes(sample(t, "virtual-service-reviews-test-v2.yaml"))
		eventually(t, 5*time.Second, func() error {
			if c := m.count(jason, 10); c["v2"] != 10 {
				return fmt.Errorf("jason: want only v2, got %v", c)
			}
			return nil
		})
		if c := m.count(jason, 30); c["v2"] != 30 {
			t.Fatalf("jason: want 30 pages from v2, got %v", c)
		}
		if c := m.count(newClient(), 30); c["v1"] != 30 {
			t.Fatalf("anonymous: want 30 pages from v1, got %v", c)
		}
	})

	t.Run("ratings-test-abort: jason's ratings fail", func(t *testing.T) {
		jason := login(t, m, "jason")
		m.apply(sample(t, "virtual-service-ratings-test-abort.yaml"))
		eventually(t, 5*time.Second, func() error {
			body, code, err := m.get(jason, "/productpage")
			if err != nil || code != 200 {
				return fmt.Errorf("product page: %d %v", code, err)
			}
			if !strings.Contains(body, "Ratings service is currently unavailable") {
				return fmt.Errorf("jason's page still shows ratings")
			}
			return nil
		})
		for range 10 {
			body, _, err := m.get(jason, "/productpage")
			if err != nil || !strings.Contains(body, "Ratings service is currently unavailable") || !strings.Contains(body, "reviews-v2-1") {
				t.Fatalf("jason: want reviews v2 without ratings (abort 100%%), got %v %.300s", err, body)
			}
		}
	})

	t.Run("ratings-test-delay: jason's reviews time out after about 6 s", func(t *testing.T) {
		jason := login(t, m, "jason")
		m.apply(sample(t, "virtual-service-ratings-test-delay.yaml"))
		eventually(t, 20*time.Second, func() error {
			start := time.Now()
			body, code, err := m.get(jason, "/productpage")
			took := time.Since(start)
			if err != nil || code != 200 {
				return fmt.Errorf("product page: %d %v", code, err)
			}
			if !strings.Contains(body, "Sorry, product reviews are currently unavailable for this book.") {
				return fmt.Errorf("jason's page still shows reviews (after %s)", took)
			}
			// productpage waits 3 s per try and tries twice, as Istio's does.
			if took < 5500*time.Millisecond || took > 9*time.Second {
				t.Fatalf("the reviews error came after %s, want about 6 s", took)
			}
			return nil
		})
		body, _, err := m.get(m.client, "/productpage")
		if err != nil || strings.Contains(body, "Sorry, product reviews") {
			t.Fatalf("anonymous users must not be delayed: %v %.300s", err, body)
		}
		if out, err := m.weft("delete", "-f", sample(t, "virtual-service-ratings-test-delay.yaml")); err != nil {
			t.Fatalf("weft delete: %v\n%s", err, out)
		}
		eventually(t, 5*time.Second, func() error {
			_, err := m.reviewsVersion(jason)
			return err
		})
	})

	t.Run("details: redirect, direct response and header edits", func(t *testing.T) {
		vs := filepath.Join(t.TempDir(), "details.yaml")
		if err := os.WriteFile(vs, []byte(detailsVS), 0o644); err != nil {
			t.Fatal(err)
		}
		m.apply(vs)
		// Call details as productpage does: through productpage's sidecar.
		sidecar := "http://" + m.b.ip(1, 1) + ":15001"
		c := newClient()
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		call := func(path string) (*http.Response, string, error) {
			req, _ := http.NewRequest(http.MethodGet, sidecar+path, nil)
			req.Host = "details:9080"
			resp, err := c.Do(req)
			if err != nil {
				return nil, "", err
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp, string(b), nil
		}
		eventually(t, 5*time.Second, func() error {
			resp, body, err := call("/teapot")
			if err != nil {
				return err
			}
			if resp.StatusCode != 418 || body != "short and stout" {
				return fmt.Errorf("/teapot: %d %q", resp.StatusCode, body)
			}
			return nil
		})
		resp, _, err := call("/old")
		if err != nil || resp.StatusCode != 301 || resp.Header.Get("Location") != "http://details:9080/details/0" {
			t.Fatalf("/old: want 301 to http://details:9080/details/0, got %v %v", resp, err)
		}
		if resp, body, err := call("/legacy/0"); err != nil || resp.StatusCode != 200 || !strings.Contains(body, "William Shakespeare") {
			t.Fatalf("/legacy/0 rewritten to /details/0: got %v %v %.100s", resp, err, body)
		}
		pre, _ := http.NewRequest(http.MethodOptions, sidecar+"/details/0", nil)
		pre.Host = "details:9080"
		pre.Header.Set("Origin", "https://bookinfo.example")
		pre.Header.Set("Access-Control-Request-Method", "GET")
		presp, err := c.Do(pre)
		if err != nil {
			t.Fatal(err)
		}
		presp.Body.Close()
		if presp.StatusCode != 200 || presp.Header.Get("Access-Control-Allow-Methods") != "GET" || presp.Header.Get("Access-Control-Max-Age") != "60" {
			t.Fatalf("CORS preflight: got %d %v", presp.StatusCode, presp.Header)
		}
		resp, body, err := call("/details/0")
		if err != nil || resp.StatusCode != 200 || resp.Header.Get("x-weft-test") != "edited" || !strings.Contains(body, "William Shakespeare") {
			t.Fatalf("/details/0: want 200 with x-weft-test: edited, got %v %v %.100s", resp, err, body)
		}
	})

	t.Run("invalid config is refused and the last good stays", func(t *testing.T) {
		bad := filepath.Join(t.TempDir(), "bad.yaml")
		yaml := strings.Replace(readFile(t, sample(t, "virtual-service-all-v1.yaml")), "host: reviews", "hosst: reviews", 1)
		if err := os.WriteFile(bad, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := m.weft("apply", "-f", bad)
		if err == nil {
			t.Fatalf("weft apply of an invalid file succeeded:\n%s", out)
		}
		for _, want := range []string{"bad.yaml", "VirtualService", "hosst"} {
			if !strings.Contains(out, want) {
				t.Errorf("error does not name %q:\n%s", want, out)
			}
		}
		jason := login(t, m, "jason")
		if c := m.count(jason, 10); c["v2"] != 10 {
			t.Fatalf("after a refused apply, jason: want v2 (test-v2 still in force), got %v", c)
		}
	})

	t.Run("local rate limit: Istio's EnvoyFilter on productpage", func(t *testing.T) {
		ef := filepath.Join("testdata", "local-ratelimit.yaml")
		m.apply(ef)
		// 4 tokens a minute: within a few pages productpage answers 429 with the header.
		eventually(t, 5*time.Second, func() error {
			resp, err := m.client.Get(m.url("/productpage"))
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("x-local-rate-limit") != "true" {
				return fmt.Errorf("productpage answered %d (x-local-rate-limit %q)", resp.StatusCode, resp.Header.Get("x-local-rate-limit"))
			}
			return nil
		})
		out, err := m.weft("logs", "productpage-v1-1.default", "--tail", "5")
		if err != nil || !strings.Contains(out, `"response_code":429`) || !strings.Contains(out, `"response_flags":"RL"`) {
			t.Fatalf("productpage's access log must show 429 RL: %v\n%s", err, out)
		}
		if out, err := m.weft("delete", "-f", ef); err != nil {
			t.Fatalf("weft delete: %v\n%s", err, out)
		}
		eventually(t, 5*time.Second, func() error {
			_, err := m.reviewsVersion(m.client)
			return err
		})
	})

	t.Run("PeerAuthentication STRICT refuses plaintext, PERMISSIVE takes it", func(t *testing.T) {
		checkPeerAuthentication(t, m)
	})

	t.Run("AuthorizationPolicy: Istio's Bookinfo authorization task", func(t *testing.T) {
		checkAuthorization(t, m)
	})

	t.Run("RequestAuthentication: JWT valid, invalid, expired, missing", func(t *testing.T) {
		checkJWT(t, m)
	})

	t.Run("egress: ServiceEntry with DNS, REGISTRY_ONLY through a Sidecar", func(t *testing.T) {
		checkEgress(t, m)
	})

	t.Run("egress TLS origination: DestinationRule tls SIMPLE", func(t *testing.T) {
		checkTLSOrigination(t, m)
	})

	t.Run("egress gateway: Istio's egress gateway task", func(t *testing.T) {
		checkEgressGateway(t, m)
	})

	t.Run("ctrl-c stops everything", func(t *testing.T) {
		if !m.demo.stop(syscall.SIGINT, 20*time.Second) {
			t.Fatalf("demo did not exit within 20s of SIGINT")
		}
		eventually(t, 5*time.Second, func() error {
			if l := listening(m.b); len(l) > 0 {
				return fmt.Errorf("still listening after the demo stopped: %v", l)
			}
			return nil
		})
	})
}

// detailsVS exercises route actions and header edits on the details service.
const detailsVS = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: details, namespace: default}
spec:
  hosts: [details]
  http:
  - match: [{uri: {exact: /teapot}}]
    directResponse: {status: 418, body: {string: short and stout}}
  - match: [{uri: {exact: /old}}]
    redirect: {uri: /details/0}
  - match: [{uri: {prefix: /legacy/}}]
    rewrite: {uri: /details/}
    route:
    - destination: {host: details}
  - headers:
      response:
        set: {x-weft-test: edited}
    corsPolicy:
      allowOrigins: [{exact: "https://bookinfo.example"}]
      allowMethods: [GET]
      maxAge: 60s
    timeout: 5s
    route:
    - destination: {host: details}
`

// login signs in through the ingress as Istio's productpage takes it and
// returns a client holding the session cookie.
func login(t *testing.T, m *mesh, user string) *http.Client {
	t.Helper()
	c := newClient()
	resp, err := c.PostForm(m.url("/login"), url.Values{"username": {user}, "passwd": {"x"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("login as %s: HTTP %d", user, resp.StatusCode)
	}
	return c
}

// waitOnly polls until 10 pages in a row come only from the given versions.
func waitOnly(t *testing.T, m *mesh, versions ...string) {
	t.Helper()
	eventually(t, 5*time.Second, func() error {
		for range 10 {
			v, err := m.reviewsVersion(m.client)
			if err != nil {
				return err
			}
			if !contains(versions, v) {
				return fmt.Errorf("served by %s, want only %v", v, versions)
			}
		}
		return nil
	})
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func checkProxyStatus(t *testing.T, m *mesh) {
	t.Helper()
	eventually(t, 10*time.Second, func() error {
		out, err := m.weft("proxy-status")
		if err != nil {
			return fmt.Errorf("weft proxy-status: %v\n%s", err, out)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		proxies := 0
		for _, l := range lines[1:] {
			if strings.TrimSpace(l) == "" {
				continue
			}
			proxies++
			if strings.Contains(l, "STALE") || strings.Contains(l, "NOT SENT") {
				return fmt.Errorf("proxy not in sync: %s", l)
			}
		}
		for _, name := range []string{"productpage-v1-1", "details-v1-1", "reviews-v1-1", "reviews-v2-1", "reviews-v3-1", "ratings-v1-1", "istio-ingressgateway"} {
			if !strings.Contains(out, name) {
				return fmt.Errorf("proxy-status lacks %s:\n%s", name, out)
			}
		}
		if proxies != 7 || !strings.Contains(out, "SYNCED") {
			return fmt.Errorf("want 7 synced proxies:\n%s", out)
		}
		return nil
	})
}

func checkProxyConfigRoutes(t *testing.T, m *mesh) {
	t.Helper()
	out, err := m.weft("proxy-config", "routes", "productpage-v1-1.default")
	if err != nil {
		t.Fatalf("weft proxy-config routes: %v\n%s", err, out)
	}
	if !strings.Contains(out, "reviews.default.svc.cluster.local:9080") || !strings.Contains(out, "reviews") {
		t.Fatalf("proxy-config routes does not show the reviews route:\n%s", out)
	}
	out, err = m.weft("proxy-config", "routes", "productpage-v1-1.default", "-o", "json")
	if err != nil {
		t.Fatalf("weft proxy-config routes -o json: %v\n%s", err, out)
	}
	var v any
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("proxy-config -o json is not JSON: %v\n%.500s", err, out)
	}
	if !strings.Contains(out, "outbound|9080|v1|reviews.default.svc.cluster.local") {
		t.Fatalf("routes JSON lacks the v1 subset cluster:\n%.2000s", out)
	}
}

// checkStars checks that each version renders its stars as Istio's Bookinfo does.
func checkStars(t *testing.T, m *mesh) {
	t.Helper()
	seen := map[string]bool{}
	for i := 0; i < 60 && len(seen) < 3; i++ {
		body, code, err := m.get(m.client, "/productpage")
		if err != nil || code != 200 {
			t.Fatalf("product page: %d %v", code, err)
		}
		match := servedBy.FindStringSubmatch(body)
		if match == nil {
			t.Fatalf("no reviews instance on the page")
		}
		v := strings.Split(match[1], "-")[1]
		black, red := strings.Contains(body, `color="black"`) || strings.Contains(body, "stars-black"), strings.Contains(body, `color="red"`) || strings.Contains(body, "stars-red")
		switch {
		case v == "v1" && (black || red), v == "v2" && (!black || red), v == "v3" && (black || !red):
			t.Fatalf("%s page has black stars %v, red stars %v", v, black, red)
		}
		seen[v] = true
	}
}

// proxyIP returns the pod IP of the proxy named name, from the control plane's proxy list.
func proxyIP(t *testing.T, m *mesh, name string) string {
	t.Helper()
	resp, err := http.Get(m.b.api() + "/api/v1/proxies")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list struct {
		Proxies []struct {
			Name, IP string
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		t.Fatal(err)
	}
	for _, p := range list.Proxies {
		if p.Name == name {
			return p.IP
		}
	}
	t.Fatalf("no proxy %s in %+v", name, list.Proxies)
	return ""
}

// checkTelemetry reads reviews-v2's metrics on :15090 and productpage's
// access log through weft logs.
func checkTelemetry(t *testing.T, m *mesh) {
	t.Helper()
	ip := proxyIP(t, m, "reviews-v2-1")
	eventually(t, 10*time.Second, func() error {
		resp, err := http.Get("http://" + ip + ":15090/stats/prometheus")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "istio_requests_total{") && strings.Contains(line, `reporter="destination"`) &&
				strings.Contains(line, `source_workload="productpage-v1"`) && strings.Contains(line, `destination_workload="reviews-v2"`) &&
				strings.Contains(line, `destination_service="reviews.default.svc.cluster.local"`) && strings.Contains(line, `response_code="200"`) &&
				strings.Contains(line, `connection_security_policy="mutual_tls"`) &&
				strings.Contains(line, `source_principal="spiffe://cluster.local/ns/default/sa/bookinfo-productpage"`) &&
				strings.Contains(line, `destination_principal="spiffe://cluster.local/ns/default/sa/bookinfo-reviews"`) {
				return nil
			}
		}
		return fmt.Errorf("reviews-v2's metrics lack productpage -> reviews-v2 requests over mutual TLS:\n%.3000s", b)
	})
	out, err := m.weft("logs", "productpage-v1-1.default", "--tail", "20")
	if err != nil {
		t.Fatalf("weft logs: %v\n%s", err, out)
	}
	var upstreams []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var e map[string]any
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("weft logs printed a line that is not JSON: %v: %q", err, line)
		}
		if c, _ := e["upstream_cluster"].(string); c != "" {
			upstreams = append(upstreams, c)
		}
	}
	joined := strings.Join(upstreams, " ")
	if !strings.Contains(joined, "reviews.default.svc.cluster.local") || !strings.Contains(joined, "details.default.svc.cluster.local") {
		t.Fatalf("productpage's access log does not show its calls to details and reviews:\n%s", out)
	}
	// reviews-v2's inbound lines have what Envoy fills: the mTLS SNI the
	// caller's sidecar asked for, the original destination, who answered.
	out, err = m.weft("logs", "reviews-v2-1.default", "--tail", "20")
	if err != nil {
		t.Fatalf("weft logs: %v\n%s", err, out)
	}
	want := map[string]string{
		"requested_server_name":    "outbound_.9080_._.reviews.default.svc.cluster.local",
		"downstream_local_address": ip + ":9080",
		"response_code_details":    "via_upstream",
	}
	found := false
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var e map[string]any
		if json.Unmarshal([]byte(line), &e) != nil || !strings.HasPrefix(fmt.Sprint(e["upstream_cluster"]), "inbound|9080") || e["response_code"] != 200.0 {
			continue
		}
		found = true
		for k, v := range want {
			if got, _ := e[k].(string); got != v {
				t.Errorf("reviews-v2's inbound access log %s = %v, want %q: %s", k, e[k], v, line)
			}
		}
		break
	}
	if !found {
		t.Errorf("reviews-v2's access log has no inbound line with 200:\n%s", out)
	}
}

// checkEgress calls an "external" server on 127.0.0.1 from productpage's
// sidecar (as the app would, through its HTTP_PROXY): passed through under
// ALLOW_ANY, reachable by name once a DNS ServiceEntry registers it, and
// refused with 502 under a Sidecar's REGISTRY_ONLY unless registered.
func checkEgress(t *testing.T, m *mesh) {
	t.Helper()
	ext := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "external saw %s", r.Host)
	}))
	defer ext.Close()
	port := ext.Listener.Addr().(*net.TCPAddr).Port
	sidecar := &url.URL{Scheme: "http", Host: proxyIP(t, m, "productpage-v1-1") + ":15001"}
	c := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(sidecar)}, Timeout: 10 * time.Second}
	get := func(target string) (int, string) {
		resp, err := c.Get(target)
		if err != nil {
			t.Fatalf("GET %s: %v", target, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	direct := fmt.Sprintf("http://127.0.0.1:%d/", port)
	if code, body := get(direct); code != 200 || !strings.HasPrefix(body, "external") {
		t.Fatalf("ALLOW_ANY: %d %q", code, body)
	}
	dir := t.TempDir()
	se := filepath.Join(dir, "se.yaml")
	os.WriteFile(se, []byte(fmt.Sprintf(`apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: external-api, namespace: default}
spec:
  hosts: [api.external.test]
  location: MESH_EXTERNAL
  resolution: DNS
  ports: [{number: %d, name: http, protocol: HTTP}]
  endpoints: [{address: localhost}]
`, port)), 0o644)
	sc := filepath.Join(dir, "sidecar.yaml")
	os.WriteFile(sc, []byte(`apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: default}
spec:
  outboundTrafficPolicy: {mode: REGISTRY_ONLY}
  egress: [{hosts: ["./*"]}]
`), 0o644)
	m.apply(se)
	named := fmt.Sprintf("http://api.external.test:%d/", port)
	eventually(t, 5*time.Second, func() error {
		if code, body := get(named); code != 200 || body != fmt.Sprintf("external saw api.external.test:%d", port) {
			return fmt.Errorf("DNS ServiceEntry: %d %q", code, body)
		}
		return nil
	})
	m.apply(sc)
	eventually(t, 5*time.Second, func() error {
		if code, _ := get(direct); code != 502 {
			return fmt.Errorf("REGISTRY_ONLY: an unregistered host answered %d, want 502", code)
		}
		return nil
	})
	if code, _ := get(named); code != 200 {
		t.Fatalf("REGISTRY_ONLY: the registered host answered %d", code)
	}
	if body, code, err := m.get(m.client, "/productpage"); err != nil || code != 200 || !strings.Contains(body, "Book Details") {
		t.Fatalf("Bookinfo must keep working under REGISTRY_ONLY: %d %v", code, err)
	}
	for _, f := range []string{sc, se} {
		if out, err := m.weft("delete", "-f", f); err != nil {
			t.Fatalf("weft delete: %v\n%s", err, out)
		}
	}
}

// checkEgressGateway follows Istio's egress gateway task with a local
// external server: the mesh's requests for the external host go to an
// egress gateway (weft gateway), which alone calls the host.
func checkEgressGateway(t *testing.T, m *mesh) {
	t.Helper()
	// The external host listens on port 80 of its own address, as in the task.
	extIP := m.b.ip(0, 4)
	ln, err := net.Listen("tcp", extIP+":80")
	if err != nil {
		t.Fatal(err)
	}
	ext := &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "external saw %s", r.Host)
	})}}
	ext.Start()
	defer ext.Close()
	port := 80
	gw := m.b.ip(0, 3)
	startJoined(t, m.b.api(), "istio-system", "istio-egressgateway-service-account", "gateway", "--name", "istio-egressgateway-1", "--namespace", "istio-system", "--service", "istio-egressgateway", "--port", "http:80",
		"--labels", "istio=egressgateway,app=istio-egressgateway", "--ip", gw, "--xds-address", m.b.controlPlaneIP()+":15010", "--otlp-endpoint", "off")
	waitHTTP(t, "http://"+gw+":15021/healthz/ready", 30*time.Second)
	f := filepath.Join(t.TempDir(), "egress.yaml")
	os.WriteFile(f, []byte(fmt.Sprintf(`apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: edition-external, namespace: default}
spec:
  hosts: [edition.external.test]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{number: %[1]d, name: http, protocol: HTTP}]
  endpoints: [{address: %[2]s}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: istio-egressgateway, namespace: default}
spec:
  selector: {istio: egressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: [edition.external.test]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: egressgateway-for-external, namespace: default}
spec:
  host: istio-egressgateway.istio-system.svc.cluster.local
  subsets: [{name: external}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: direct-external-through-egress-gateway, namespace: default}
spec:
  hosts: [edition.external.test]
  gateways: [istio-egressgateway, mesh]
  http:
  - match: [{gateways: [mesh], port: %[1]d}]
    route:
    - destination: {host: istio-egressgateway.istio-system.svc.cluster.local, subset: external, port: {number: 80}}
      weight: 100
  - match: [{gateways: [istio-egressgateway], port: 80}]
    route:
    - destination: {host: edition.external.test, port: {number: %[1]d}}
      weight: 100
`, port, extIP)), 0o644)
	m.apply(f)
	defer m.weft("delete", "-f", f)
	sidecar := &url.URL{Scheme: "http", Host: proxyIP(t, m, "productpage-v1-1") + ":15001"}
	// Until the config arrives the sidecar passes the request through, and
	// looking the name up may hang: short tries.
	c := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(sidecar)}, Timeout: 2 * time.Second}
	target := "http://edition.external.test/politics"
	gatewayLog := func() string {
		lr, err := http.Get("http://" + gw + ":15000/logs")
		if err != nil {
			return err.Error()
		}
		defer lr.Body.Close()
		logs, _ := io.ReadAll(lr.Body)
		return string(logs)
	}
	eventually(t, 20*time.Second, func() error {
		resp, err := c.Get(target)
		if err != nil {
			return err
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "external saw edition.external.test" {
			return fmt.Errorf("GET %s: %d %q; the egress gateway's access log: %.800s", target, resp.StatusCode, b, gatewayLog())
		}
		// The egress gateway's access log has the request.
		if logs := gatewayLog(); !strings.Contains(logs, `"path":"/politics"`) || !strings.Contains(logs, "outbound|80||edition.external.test") {
			return fmt.Errorf("the egress gateway's access log has no request for edition.external.test/politics: %.800s", logs)
		}
		return nil
	})
}

// checkTrace loads a product page with a fresh W3C trace id and finds that
// trace in the control plane's store: a span for every hop, client and
// server side, each server span the child of its client span.
func checkTrace(t *testing.T, m *mesh) {
	t.Helper()
	// Reviews v2 and v3 call ratings: keep loading until one of them serves.
	var traceID string
	for i := 0; ; i++ {
		traceID = fmt.Sprintf("%032x", time.Now().UnixNano())
		req, _ := http.NewRequest("GET", m.url("/productpage"), nil)
		req.Header.Set("traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
		resp, err := m.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(body), "reviews-v1-") {
			break
		}
		if i == 20 {
			t.Fatal("20 pages all served by reviews v1")
		}
	}
	var trace struct {
		Data []struct {
			Spans []struct {
				SpanID, ParentSpanID, OperationName, ProcessID string
				Tags                                           []struct {
					Key   string
					Value any
				}
			}
			Processes map[string]struct{ ServiceName string }
		}
	}
	eventually(t, 10*time.Second, func() error {
		resp, err := http.Get(m.b.api() + "/api/v1/traces/" + traceID)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("GET trace: %s", resp.Status)
		}
		if err := json.NewDecoder(resp.Body).Decode(&trace); err != nil {
			return err
		}
		if len(trace.Data) != 1 || len(trace.Data[0].Spans) < 8 {
			return fmt.Errorf("trace has %d spans so far", len(trace.Data[0].Spans))
		}
		return nil
	})
	tr := trace.Data[0]
	services := map[string]int{}
	byID := map[string]string{}
	for _, sp := range tr.Spans {
		services[tr.Processes[sp.ProcessID].ServiceName]++
		byID[sp.SpanID] = sp.OperationName
	}
	for _, svc := range []string{"productpage", "details", "reviews", "ratings"} {
		found := false
		for name := range services {
			found = found || strings.HasPrefix(name, svc)
		}
		if !found {
			t.Errorf("the trace has no span from %s: %v", svc, services)
		}
	}
	for _, sp := range tr.Spans {
		if sp.ParentSpanID != "" && sp.ParentSpanID != "00f067aa0ba902b7" && byID[sp.ParentSpanID] == "" {
			t.Errorf("span %s (%s) names a parent %s that is not in the trace", sp.SpanID, sp.OperationName, sp.ParentSpanID)
		}
		// The ingress's span, the caller's child, is named as Istio names it: by its route.
		if sp.ParentSpanID == "00f067aa0ba902b7" && sp.OperationName != ingressRoot {
			t.Errorf("the ingress's span is named %q, want %q", sp.OperationName, ingressRoot)
		}
	}
	t.Logf("trace %s: %d spans from %v", traceID, len(tr.Spans), services)
}

// checkTelemetryAPI applies a mesh-wide Telemetry that logs only errors and
// samples no new traces, and checks both on live traffic.
func checkTelemetryAPI(t *testing.T, m *mesh) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "telemetry.yaml")
	os.WriteFile(f, []byte(`apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: mesh-default, namespace: istio-system}
spec:
  tracing: [{randomSamplingPercentage: 0}]
  accessLogging: [{filter: {expression: "response.code >= 400"}}]
`), 0o644)
	m.apply(f)
	get := func(path, id string) int {
		req, _ := http.NewRequest("GET", m.url(path), nil)
		req.Header.Set("x-request-id", id)
		resp, err := m.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	stamp := fmt.Sprint(time.Now().UnixNano())
	var okID, missingID string
	eventually(t, 10*time.Second, func() error {
		okID, missingID = "ok-"+stamp+fmt.Sprint(time.Now().UnixNano()), "missing-"+stamp+fmt.Sprint(time.Now().UnixNano())
		if code := get("/productpage", okID); code != 200 {
			return fmt.Errorf("productpage: %d", code)
		}
		if code := get("/no-such-page", missingID); code != 404 {
			return fmt.Errorf("/no-such-page: %d", code)
		}
		out, err := m.weft("logs", "istio-ingressgateway.istio-system", "--tail", "50")
		if err != nil {
			return fmt.Errorf("weft logs: %v: %s", err, out)
		}
		if strings.Contains(out, okID) || !strings.Contains(out, missingID) {
			return fmt.Errorf("the gateway's log has the 200 %v and the 404 %v; want only the 404",
				strings.Contains(out, okID), strings.Contains(out, missingID))
		}
		return nil
	})
	// Sampling 0: a request without a trace context starts no trace. Spans
	// of the requests above (sent while the config arrived) go out in 1 s batches.
	time.Sleep(1500 * time.Millisecond)
	resp, err := http.Get(m.b.api() + "/api/v1/traces?service=istio-ingressgateway.istio-system&lookback=1h&limit=1000")
	if err != nil {
		t.Fatal(err)
	}
	var before struct{ Total int }
	json.NewDecoder(resp.Body).Decode(&before)
	resp.Body.Close()
	for range 5 {
		get("/productpage", "unsampled-"+stamp)
	}
	time.Sleep(1500 * time.Millisecond) // spans are exported in 1 s batches
	resp, err = http.Get(m.b.api() + "/api/v1/traces?service=istio-ingressgateway.istio-system&lookback=1h&limit=1000")
	if err != nil {
		t.Fatal(err)
	}
	var after struct{ Total int }
	json.NewDecoder(resp.Body).Decode(&after)
	resp.Body.Close()
	if after.Total != before.Total {
		t.Errorf("with randomSamplingPercentage 0 the gateway still started %d traces", after.Total-before.Total)
	}
	if out, err := m.weft("delete", "-f", f); err != nil {
		t.Fatalf("weft delete: %v\n%s", err, out)
	}
}

// checkMetricTagOverrides follows Istio's "Customizing Istio Metrics"
// task: on productpage's server side, requests_total gains request_host
// and a header dimension and loses response_flags; other metrics keep
// Istio's labels.
func checkMetricTagOverrides(t *testing.T, m *mesh) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "telemetry.yaml")
	os.WriteFile(f, []byte(`apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: productpage-metrics, namespace: default}
spec:
  selector: {matchLabels: {app: productpage}}
  metrics:
  - providers: [{name: prometheus}]
    overrides:
    - match: {metric: REQUEST_COUNT, mode: SERVER}
      tagOverrides:
        request_host: {value: "request.host"}
        team: {value: "request.headers['x-team']"}
        response_flags: {operation: REMOVE}
`), 0o644)
	m.apply(f)
	defer m.weft("delete", "-f", f)
	ip := proxyIP(t, m, "productpage-v1-1")
	eventually(t, 10*time.Second, func() error {
		req, _ := http.NewRequest("GET", m.url("/productpage"), nil)
		req.Header.Set("x-team", "blue")
		resp, err := m.client.Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		mr, err := http.Get("http://" + ip + ":15090/stats/prometheus")
		if err != nil {
			return err
		}
		b, _ := io.ReadAll(mr.Body)
		mr.Body.Close()
		var counted, histogram bool
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "istio_requests_total{") && strings.Contains(line, `reporter="destination"`) &&
				strings.Contains(line, `team="blue"`) && strings.Contains(line, `request_host="`) && !strings.Contains(line, "response_flags=") {
				counted = true
			}
			if strings.HasPrefix(line, "istio_request_duration_milliseconds_count{") && strings.Contains(line, `reporter="destination"`) &&
				strings.Contains(line, "response_flags=") && !strings.Contains(line, "team=") {
				histogram = true
			}
		}
		if !counted || !histogram {
			return fmt.Errorf("productpage's metrics: requests_total with team and request_host, without response_flags: %v; durations unchanged: %v", counted, histogram)
		}
		return nil
	})
}

// checkTLSOrigination: the app speaks plain HTTP to an external name; its
// sidecar originates TLS (SIMPLE, verified with the CA given, SNI set).
func checkTLSOrigination(t *testing.T, m *mesh) {
	t.Helper()
	ext := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "tls %v sni %s", r.TLS.Version >= tls.VersionTLS12, r.TLS.ServerName)
	}))
	defer ext.Close()
	port := ext.Listener.Addr().(*net.TCPAddr).Port
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ext.Certificate().Raw}), 0o644)
	cfg := filepath.Join(dir, "tls.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: secure-api, namespace: default}
spec:
  hosts: [secure.external.test]
  location: MESH_EXTERNAL
  resolution: DNS
  ports: [{number: %d, name: http, protocol: HTTP}]
  endpoints: [{address: localhost}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: secure-api, namespace: default}
spec:
  host: secure.external.test
  trafficPolicy:
    tls: {mode: SIMPLE, sni: example.com, caCertificates: %s}
`, port, ca)), 0o644)
	m.apply(cfg)
	sidecar := &url.URL{Scheme: "http", Host: proxyIP(t, m, "productpage-v1-1") + ":15001"}
	c := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(sidecar)}, Timeout: 10 * time.Second}
	eventually(t, 5*time.Second, func() error {
		resp, err := c.Get(fmt.Sprintf("http://secure.external.test:%d/", port))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(b) != "tls true sni example.com" {
			return fmt.Errorf("got %d %q", resp.StatusCode, b)
		}
		return nil
	})
	if out, err := m.weft("delete", "-f", cfg); err != nil {
		t.Fatalf("weft delete: %v\n%s", err, out)
	}
}

// plaintextToSidecar sends a plaintext request to a sidecar's inbound port
// as a peer without a certificate would (PROXY v2 header, then HTTP/1.1).
func plaintextToSidecar(ip string, port uint16) (string, error) {
	c, err := net.DialTimeout("tcp", net.JoinHostPort(ip, "15006"), 2*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	c.Write(proxyHeader(ip, port))
	fmt.Fprintf(c, "GET /ratings/0 HTTP/1.1\r\nHost: ratings:9080\r\nConnection: close\r\n\r\n")
	b, err := io.ReadAll(c)
	return string(b), err
}

// proxyHeader is the PROXY v2 header a peer sidecar sends first on a
// sidecar's inbound port: from 127.0.0.1:40000 to ip:port.
func proxyHeader(ip string, port uint16) []byte {
	hdr := []byte("\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c")
	src, d := netip.MustParseAddr("127.0.0.1").As4(), netip.MustParseAddr(ip).As4()
	hdr = append(append(append(hdr, src[:]...), d[:]...), 0x9c, 0x40, byte(port>>8), byte(port))
	return hdr
}

// tlsToSidecar reports whether a sidecar's inbound port answers a TLS
// ClientHello for port (the handshake gets a reply, even a refusal).
func tlsToSidecar(ip string, port uint16) bool {
	c, err := net.DialTimeout("tcp", net.JoinHostPort(ip, "15006"), 2*time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := c.Write(proxyHeader(ip, port)); err != nil {
		return false
	}
	err = tls.Client(c, &tls.Config{InsecureSkipVerify: true, ServerName: "ratings"}).Handshake()
	return err == nil || strings.Contains(err.Error(), "remote error")
}

// checkPeerAuthentication: ratings accepts a plaintext peer under the
// default PERMISSIVE, refuses it under STRICT while Bookinfo (mTLS) keeps
// working, and takes it again once the policy is gone.
func checkPeerAuthentication(t *testing.T, m *mesh) {
	t.Helper()
	ip := proxyIP(t, m, "ratings-v1-1")
	if out, err := plaintextToSidecar(ip, 9080); err != nil || !strings.HasPrefix(out, "HTTP/1.1 200") {
		t.Fatalf("PERMISSIVE: a plaintext peer got %q, %v", out, err)
	}
	if !tlsToSidecar(ip, 9080) {
		t.Fatalf("PERMISSIVE: ratings' sidecar does not answer TLS")
	}
	// A plaintext keep-alive connection opened under PERMISSIVE...
	kept, err := net.DialTimeout("tcp", net.JoinHostPort(ip, "15006"), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer kept.Close()
	kept.Write(proxyHeader(ip, 9080))
	keptR := bufio.NewReader(kept)
	keptGet := func() (*http.Response, error) {
		kept.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(kept, "GET /ratings/0 HTTP/1.1\r\nHost: ratings:9080\r\n\r\n")
		resp, err := http.ReadResponse(keptR, nil)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		return resp, err
	}
	if resp, err := keptGet(); err != nil || resp.StatusCode != 200 || resp.Close {
		t.Fatalf("PERMISSIVE: a keep-alive plaintext request: %v, %v", resp, err)
	}
	f := filepath.Join(t.TempDir(), "strict.yaml")
	os.WriteFile(f, []byte(`apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec:
  mtls: {mode: STRICT}
`), 0o644)
	m.apply(f)
	eventually(t, 5*time.Second, func() error {
		if out, _ := plaintextToSidecar(ip, 9080); strings.HasPrefix(out, "HTTP/1.1 200") {
			return fmt.Errorf("STRICT: a plaintext peer still got an answer")
		}
		return nil
	})
	// ...is drained as Envoy drains a removed filter chain: its next
	// request is the last (Connection: close), then it is closed.
	if resp, err := keptGet(); err == nil && !resp.Close {
		t.Fatalf("STRICT: the plaintext keep-alive connection opened before still serves (%s, no Connection: close)", resp.Status)
	}
	if resp, err := keptGet(); err == nil {
		t.Fatalf("STRICT: the plaintext connection opened before still answers: %s", resp.Status)
	}
	if _, err := m.reviewsVersion(m.client); err != nil {
		t.Fatalf("under STRICT, Bookinfo's own mTLS traffic must flow: %v", err)
	}
	if out, err := m.weft("delete", "-f", f); err != nil {
		t.Fatalf("weft delete: %v\n%s", err, out)
	}
	eventually(t, 5*time.Second, func() error {
		if out, err := plaintextToSidecar(ip, 9080); err != nil || !strings.HasPrefix(out, "HTTP/1.1 200") {
			return fmt.Errorf("PERMISSIVE again: %q, %v", out, err)
		}
		return nil
	})

	// DISABLE on ratings: its sidecar takes plaintext only, and auto mTLS
	// makes reviews' sidecars send plaintext to it, so ratings still render.
	// One request per connection, so pooled mTLS connections don't hide it.
	off := filepath.Join(t.TempDir(), "disable.yaml")
	os.WriteFile(off, []byte(`apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: ratings-plaintext, namespace: default}
spec:
  selector: {matchLabels: {app: ratings}}
  mtls: {mode: DISABLE}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ratings, namespace: default}
spec:
  host: ratings
  trafficPolicy: {connectionPool: {http: {maxRequestsPerConnection: 1}}}
  subsets:
  - {name: v1, labels: {version: v1}}
`), 0o644)
	m.apply(off)
	defer func() {
		m.weft("delete", "-f", off)
		m.apply(sample(t, "destination-rule-all.yaml"))
	}()
	eventually(t, 10*time.Second, func() error {
		if tlsToSidecar(ip, 9080) {
			return fmt.Errorf("DISABLE: ratings' sidecar still answers TLS")
		}
		return nil
	})
	jason := login(t, m, "jason") // reviews v2 or v3 whether reviews-test-v2 is applied or not
	eventually(t, 10*time.Second, func() error {
		stars := 0
		for range 12 {
			body, code, err := m.get(jason, "/productpage")
			if err != nil || code != 200 || strings.Contains(body, "Ratings service is currently unavailable") {
				return fmt.Errorf("DISABLE on ratings: %d, %v, ratings unavailable=%v", code, err, strings.Contains(body, "Ratings service is currently unavailable"))
			}
			if strings.Contains(body, `class="stars"`) {
				stars++
			}
		}
		if stars == 0 {
			return fmt.Errorf("DISABLE on ratings: no page with ratings in 12 requests")
		}
		return nil
	})
}

// checkAuthorization walks Istio's authorization task for Bookinfo: allow
// nothing, then productpage from anyone, details and reviews from
// productpage's service account only, ratings from reviews' only.
func checkAuthorization(t *testing.T, m *mesh) {
	t.Helper()
	dir := filepath.Join("testdata", "authz")
	page := func() (int, string) {
		body, code, err := m.get(m.client, "/productpage")
		if err != nil {
			t.Fatal(err)
		}
		return code, body
	}
	steps := []struct {
		file  string
		check func(code int, body string) error
	}{
		{"1-allow-nothing.yaml", func(code int, body string) error {
			if code != 403 || body != "RBAC: access denied" {
				return fmt.Errorf("allow-nothing: %d %.100q", code, body)
			}
			return nil
		}},
		{"2-productpage-viewer.yaml", func(code int, body string) error {
			if code != 200 || !strings.Contains(body, "Sorry, product details are currently unavailable") ||
				!strings.Contains(body, "Sorry, product reviews are currently unavailable") {
				return fmt.Errorf("productpage-viewer: %d, want the page without details and reviews", code)
			}
			return nil
		}},
		{"3-details-reviews-viewer.yaml", func(code int, body string) error {
			if code != 200 || strings.Contains(body, "Sorry, product details") || strings.Contains(body, "Sorry, product reviews") {
				return fmt.Errorf("details and reviews viewers: %d, want both on the page", code)
			}
			if !strings.Contains(body, "reviews-v1-") && !strings.Contains(body, "Ratings service is currently unavailable") {
				return fmt.Errorf("ratings must still be refused to reviews")
			}
			return nil
		}},
		{"4-ratings-viewer.yaml", func(code int, body string) error {
			if code != 200 || strings.Contains(body, "Ratings service is currently unavailable") {
				return fmt.Errorf("ratings-viewer: %d, want ratings", code)
			}
			return nil
		}},
	}
	for _, st := range steps {
		m.apply(filepath.Join(dir, st.file))
		eventually(t, 10*time.Second, func() error {
			for range 6 { // every reviews version, settled
				if err := st.check(page()); err != nil {
					return err
				}
			}
			return nil
		})
	}
	for i := len(steps) - 1; i >= 0; i-- {
		if out, err := m.weft("delete", "-f", filepath.Join(dir, steps[i].file)); err != nil {
			t.Fatalf("weft delete: %v\n%s", err, out)
		}
	}
	eventually(t, 5*time.Second, func() error {
		if code, _ := page(); code != 200 {
			return fmt.Errorf("after deleting the policies: %d", code)
		}
		return nil
	})
}

// checkJWT follows Istio's JWT task on productpage: with a
// RequestAuthentication a valid token passes, an invalid or expired one
// gets 401 and a missing one passes; an AuthorizationPolicy requiring a
// request principal then refuses requests without a token (403).
func checkJWT(t *testing.T, m *mesh) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "test", Algorithm: "RS256", Use: "sig"}}})
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", "test").WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	token := func(exp time.Time) string {
		payload, _ := json.Marshal(map[string]any{"iss": "testing@secure.istio.io", "sub": "testing@secure.istio.io", "exp": exp.Unix(), "groups": []string{"group1"}})
		jws, err := signer.Sign(payload)
		if err != nil {
			t.Fatal(err)
		}
		s, _ := jws.CompactSerialize()
		return s
	}
	valid, expired := token(time.Now().Add(time.Hour)), token(time.Now().Add(-time.Hour))
	get := func(tok string) int {
		req, _ := http.NewRequest("GET", m.url("/productpage"), nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := m.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	dir := t.TempDir()
	ra := filepath.Join(dir, "ra.yaml")
	os.WriteFile(ra, []byte(`apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt-example, namespace: default}
spec:
  selector: {matchLabels: {app: productpage}}
  jwtRules:
  - issuer: testing@secure.istio.io
    jwks: '`+string(jwks)+`'
`), 0o644)
	m.apply(ra)
	eventually(t, 5*time.Second, func() error {
		if code := get("not-a-token"); code != 401 {
			return fmt.Errorf("an invalid token got %d, want 401", code)
		}
		return nil
	})
	for _, c := range []struct {
		name, tok string
		want      int
	}{{"valid", valid, 200}, {"expired", expired, 401}, {"missing", "", 200}} {
		if code := get(c.tok); code != c.want {
			t.Errorf("%s token: %d, want %d", c.name, code, c.want)
		}
	}
	ap := filepath.Join(dir, "ap.yaml")
	os.WriteFile(ap, []byte(`apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: require-jwt, namespace: default}
spec:
  selector: {matchLabels: {app: productpage}}
  action: ALLOW
  rules:
  - from: [{source: {requestPrincipals: ["testing@secure.istio.io/testing@secure.istio.io"]}}]
    when: [{key: "request.auth.claims[groups]", values: ["group1"]}]
`), 0o644)
	m.apply(ap)
	eventually(t, 5*time.Second, func() error {
		if code := get(""); code != 403 {
			return fmt.Errorf("without a token under require-jwt: %d, want 403", code)
		}
		return nil
	})
	if code := get(valid); code != 200 {
		t.Errorf("a valid token under require-jwt: %d, want 200", code)
	}
	for _, f := range []string{ap, ra} {
		if out, err := m.weft("delete", "-f", f); err != nil {
			t.Fatalf("weft delete: %v\n%s", err, out)
		}
	}
	eventually(t, 5*time.Second, func() error {
		if code := get("not-a-token"); code != 200 {
			return fmt.Errorf("after deleting: %d", code)
		}
		return nil
	})
}
