package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// temperatureCall is one answer of the temperature API.
type temperatureCall struct {
	code      int
	body      map[string]any
	raw       string
	converter string // x-converter: the version that answered (or failed)
	took      time.Duration
}

// getTemperature asks the API, through the ingress, for 150 °C in Kelvin.
func getTemperature(b block) (temperatureCall, error) {
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil}}
	start := time.Now()
	resp, err := client.Get("http://" + b.ingress() + "/?from=Celsius&to=Kelvin&temperature=150")
	if err != nil {
		return temperatureCall{}, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	c := temperatureCall{code: resp.StatusCode, raw: string(raw), converter: resp.Header.Get("x-converter"), took: time.Since(start)}
	_ = json.Unmarshal(raw, &c.body)
	return c, nil
}

// TestTemperatureDemoProxyless runs `weft demo --app temperature
// --proxyless`: the API's gRPC client and the converters are proxyless
// gRPC apps (grpc-go's xDS client, no sidecar) under weft run --proxyless,
// calling the converters over mTLS, and docs/examples/temperature behaves
// as with sidecars: canary weights
// shift traffic, all-to-v2 fails some calls, retries on UNAVAILABLE hide
// them, a gRPC fault aborts, and a gRPC delay is cut by the gateway's
// timeout.
func TestTemperatureDemoProxyless(t *testing.T) {
	b := newBlock(t)
	demo := start(t, "demo", "--app", "temperature", "--proxyless", "--no-load", "--ip-base", b.ipBase(), "--ingress", b.ingress(),
		"--control-plane-ip", b.controlPlaneIP(), "--data-dir", t.TempDir())
	t.Cleanup(func() { demo.stop(syscall.SIGINT, 20*time.Second) })
	call := func() temperatureCall {
		t.Helper()
		c, err := getTemperature(b)
		if err != nil {
			t.Fatalf("GET temperature: %v", err)
		}
		return c
	}
	eventually(t, 60*time.Second, func() error {
		c, err := getTemperature(b)
		if err != nil {
			return err
		}
		if c.code != 200 || c.body["value"] != 423.15 || c.body["unit"] != "Kelvin" {
			return fmt.Errorf("got %d %s", c.code, c.raw)
		}
		return nil
	})

	t.Run("the apps are proxyless: no sidecar, type proxyless in proxy-status", func(t *testing.T) {
		out, err := runWeft(b.api(), "proxy-status", "-o", "json")
		if err != nil {
			t.Fatalf("weft proxy-status: %v\n%s", err, out)
		}
		var ps []struct {
			Name string `json:"name"`
			Type string `json:"type"`
		}
		if err := json.Unmarshal([]byte(out), &ps); err != nil {
			t.Fatalf("proxy-status -o json: %v\n%s", err, out)
		}
		types := map[string]string{}
		for _, p := range ps {
			types[p.Name] = p.Type
		}
		for _, name := range []string{"temperature-v1-1", "converter-v1-1", "converter-v2-1"} {
			if types[name] != "proxyless" {
				t.Errorf("%s has type %q in proxy-status, want proxyless: %v", name, types[name], types)
			}
		}
		// The API's pod IP (the first) has its app's port and no sidecar's.
		for _, port := range []string{"15021", "15001", "15006"} {
			if c, err := net.DialTimeout("tcp", net.JoinHostPort(b.ip(1, 1), port), time.Second); err == nil {
				c.Close()
				t.Errorf("something listens on %s:%s, a sidecar's port", b.ip(1, 1), port)
			}
		}
	})

	apply := func(name string) {
		t.Helper()
		if out, err := runWeft(b.api(), "apply", "-f", filepath.Join("..", "..", "docs", "examples", "temperature", name)); err != nil {
			t.Fatalf("weft apply %s: %v\n%s", name, err, out)
		}
	}
	apply("converter-subsets.yaml")

	t.Run("mTLS: the converters demand a client certificate and present their SPIFFE ID", func(t *testing.T) {
		// The API's calls above succeeded against this port: they were
		// mutual TLS with a mesh certificate.
		var served []*x509.Certificate
		conn, err := tls.Dial("tcp", net.JoinHostPort(b.ip(1, 2), "50051"), &tls.Config{
			InsecureSkipVerify: true, NextProtos: []string{"h2"}, MinVersion: tls.VersionTLS13,
			VerifyConnection: func(cs tls.ConnectionState) error { served = cs.PeerCertificates; return nil },
		})
		if err != nil {
			t.Fatalf("TLS to converter-v1-1: %v", err)
		}
		defer conn.Close()
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = conn.Read(make([]byte, 1))
		if err == nil || !strings.Contains(err.Error(), "certificate required") {
			t.Errorf("a client without a certificate read from converter-v1-1 (%v), want the alert certificate required", err)
		}
		const id = "spiffe://cluster.local/ns/default/sa/converter"
		if len(served) == 0 || len(served[0].URIs) != 1 || served[0].URIs[0].String() != id {
			t.Errorf("converter-v1-1 presents %v, want a certificate of %s", served, id)
		}
	})

	t.Run("canary weights: 80% to v1, 20% to v2", func(t *testing.T) {
		// Before: all to v2, so that the shift to 80/20 is seen to happen.
		apply("converter-v2.yaml")
		eventually(t, 5*time.Second, func() error {
			for range 10 {
				if c := call(); c.converter != "v2" {
					return fmt.Errorf("served by %q", c.converter)
				}
			}
			return nil
		})
		apply("converter-canary.yaml")
		eventually(t, 5*time.Second, func() error {
			for range 20 {
				if call().converter == "v1" {
					return nil
				}
			}
			return fmt.Errorf("no call reached v1 yet")
		})
		const n = 300
		versions := map[string]int{}
		for range n {
			c := call()
			versions[c.converter]++
			if c.code != 200 && (c.converter != "v2" || c.code != 503) {
				t.Fatalf("got %d %s from %q: only v2 fails", c.code, c.raw, c.converter)
			}
		}
		// 20% of 300: sd 6.9 calls (2.3 points); ±8 points is 3.5 sd.
		share := float64(versions["v2"]) * 100 / n
		if versions["v1"]+versions["v2"] != n || share < 12 || share > 28 {
			t.Fatalf("want about 20%% of %d calls on v2, got %v (%.1f%%)", n, versions, share)
		}
		t.Logf("%d calls: %v (v2 %.1f%%)", n, versions, share)
	})

	t.Run("all calls to the v2 canary, no retries: some fail UNAVAILABLE", func(t *testing.T) {
		apply("converter-v2.yaml")
		eventually(t, 5*time.Second, func() error {
			for range 10 {
				if c := call(); c.converter != "v2" {
					return fmt.Errorf("served by %q", c.converter)
				}
			}
			return nil
		})
		fails := 0
		for range 100 {
			switch c := call(); {
			case c.code == 503 && c.body["grpc_status"] == "Unavailable":
				fails++
			case c.code != 200 || c.converter != "v2":
				t.Fatalf("got %d %s from %q", c.code, c.raw, c.converter)
			}
		}
		// v2 fails 30%: mean 30 of 100, sd 4.6; 10 is over 4 sd below.
		if fails < 10 {
			t.Fatalf("only %d of 100 calls failed against a canary failing 30%%", fails)
		}
		t.Logf("%d of 100 calls failed", fails)
	})

	t.Run("retries on gRPC UNAVAILABLE hide the canary's failures", func(t *testing.T) {
		apply("converter-retries.yaml")
		// The push reaches the API's xDS client: 20 calls in a row succeed.
		eventually(t, 5*time.Second, func() error {
			for range 20 {
				if c := call(); c.code != 200 {
					return fmt.Errorf("got %d %s", c.code, c.raw)
				}
			}
			return nil
		})
		for i := range 100 {
			// 8 retries: a call fails only if 9 tries do, 0.3^9 = 2e-5.
			if c := call(); c.code != 200 || c.converter != "v2" {
				t.Fatalf("call %d: %d %s from %q", i, c.code, c.raw, c.converter)
			}
		}
	})

	t.Run("gRPC fault abort", func(t *testing.T) {
		apply("converter-abort.yaml")
		eventually(t, 5*time.Second, func() error {
			for range 5 {
				// The fault aborts before any converter answers: no x-converter.
				if c := call(); c.code != 503 || c.body["grpc_status"] != "Unavailable" || c.converter != "" {
					return fmt.Errorf("got %d %s from %q", c.code, c.raw, c.converter)
				}
			}
			return nil
		})
	})

	t.Run("a gRPC delay cut by the gateway's timeout", func(t *testing.T) {
		apply("converter-timeout.yaml")
		eventually(t, 10*time.Second, func() error {
			c, err := getTemperature(b)
			if err != nil {
				return err
			}
			if c.code != 504 || c.raw != "upstream request timeout" || c.took > 1500*time.Millisecond {
				return fmt.Errorf("got %d %q after %s", c.code, c.raw, c.took)
			}
			return nil
		})
	})
}
