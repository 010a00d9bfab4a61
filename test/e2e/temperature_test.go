package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestTemperatureDemo runs `weft demo --app temperature` and shows this
// issue's features on gRPC traffic through the ingress: canary weights,
// routing to a canary, retries on gRPC UNAVAILABLE, a gRPC fault abort,
// and a timeout.
func TestTemperatureDemo(t *testing.T) {
	b := newBlock(t)
	demo := start(t, "demo", "--app", "temperature", "--no-load", "--ip-base", b.ipBase(), "--ingress", b.ingress(),
		"--control-plane-ip", b.controlPlaneIP(), "--data-dir", t.TempDir())
	t.Cleanup(func() { demo.stop(syscall.SIGINT, 20*time.Second) })
	url := "http://" + b.ingress() + "/?from=Celsius&to=Kelvin&temperature=150"
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil}}
	try := func() (int, map[string]any, string, error) {
		resp, err := client.Get(url)
		if err != nil {
			return 0, nil, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var v map[string]any
		json.Unmarshal(b, &v)
		return resp.StatusCode, v, resp.Header.Get("x-converter"), nil
	}
	call := func() (int, map[string]any, string) {
		t.Helper()
		code, v, ver, err := try()
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		return code, v, ver
	}
	eventually(t, 60*time.Second, func() error {
		code, v, _, err := try()
		if err != nil {
			return err
		}
		if code != 200 || v["value"] != 423.15 || v["unit"] != "Kelvin" {
			return fmt.Errorf("got %d %v", code, v)
		}
		return nil
	})
	api := b.api()
	apply := func(name string) {
		t.Helper()
		if out, err := runWeft(api, "apply", "-f", filepath.Join("..", "..", "docs", "examples", "temperature", name)); err != nil {
			t.Fatalf("weft apply %s: %v\n%s", name, err, out)
		}
	}
	apply("converter-subsets.yaml")

	t.Run("canary weights: 80% to v1, 20% to v2", func(t *testing.T) {
		apply("converter-canary.yaml")
		const n = 300
		var versions map[string]int
		// Until the push arrives all calls go to either version: poll
		// until a 300-call sample looks like 80/20.
		eventually(t, 10*time.Second, func() error {
			versions = map[string]int{}
			for range n {
				code, v, ver := call()
				versions[ver]++
				if code != 200 && (ver != "v2" || code != 503) {
					// Only v2 fails, once the push is in (a call racing the
					// new clusters can fail before it).
					return fmt.Errorf("got %d %v from %q: only v2 fails", code, v, ver)
				}
			}
			// 20% of 300: sd 6.9 calls (2.3 points); ±8 points is 3.5 sd.
			if share := float64(versions["v2"]) * 100 / n; versions["v1"]+versions["v2"] != n || share < 12 || share > 28 {
				return fmt.Errorf("want about 20%% of %d calls on v2, got %v (%.1f%%)", n, versions, share)
			}
			return nil
		})
		t.Logf("%d calls: %v", n, versions)
	})

	t.Run("all calls to the v2 canary, no retries: some fail UNAVAILABLE", func(t *testing.T) {
		apply("converter-v2.yaml")
		eventually(t, 5*time.Second, func() error {
			for range 10 { // v1 answers until the push arrives
				if _, _, ver := call(); ver != "v2" {
					return fmt.Errorf("served by %q", ver)
				}
			}
			return nil
		})
		fails := 0
		for range 100 {
			code, v, ver := call()
			switch {
			case code == 503 && v["grpc_status"] == "Unavailable":
				fails++
			case code != 200 || ver != "v2":
				t.Fatalf("got %d %v from %q", code, v, ver)
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
		time.Sleep(500 * time.Millisecond) // the push reaches the API's sidecar
		for i := range 100 {
			// 8 retries: a call fails only if 9 tries do, 0.3^9 = 2e-5.
			if code, v, ver := call(); code != 200 || ver != "v2" {
				t.Fatalf("call %d: %d %v from %q", i, code, v, ver)
			}
		}
	})

	t.Run("gRPC fault abort", func(t *testing.T) {
		apply("converter-abort.yaml")
		eventually(t, 5*time.Second, func() error {
			code, v, _ := call()
			if code != 503 || v["grpc_status"] != "Unavailable" || v["error"] != "fault filter abort" {
				return fmt.Errorf("got %d %v", code, v)
			}
			return nil
		})
	})

	t.Run("a gRPC delay cut by the gateway's timeout", func(t *testing.T) {
		apply("converter-timeout.yaml")
		eventually(t, 10*time.Second, func() error {
			start := time.Now()
			resp, err := client.Get(url)
			if err != nil {
				return err
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			took := time.Since(start)
			if resp.StatusCode != 504 || string(body) != "upstream request timeout" || took > 1500*time.Millisecond {
				return fmt.Errorf("got %d %q after %s", resp.StatusCode, body, took)
			}
			return nil
		})
	})
}
