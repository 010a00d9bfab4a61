package e2e

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTCPEcho follows Istio's TCP traffic shifting task with its own
// samples: tcp-echo v1 and v2 behind the ingress gateway's TCP port 31400,
// all to v1, then 80/20.
func TestTCPEcho(t *testing.T) {
	b := newBlock(t)
	xds := b.controlPlaneIP() + ":15010"
	start(t, "control-plane", "--data-dir", t.TempDir(), "--http-address", b.controlPlaneIP()+":15014", "--secure-xds-address", b.controlPlaneIP()+":15012",
		"--otlp-grpc-address", "off", "--otlp-http-address", "off")
	waitHTTP(t, b.api()+"/api/v1/proxies", 30*time.Second)
	for i, v := range []struct{ version, prefix string }{{"v1", "one"}, {"v2", "two"}} {
		startJoined(t, b.api(), "default", "tcp-echo", "run", "--name", "tcp-echo-"+v.version+"-1", "--namespace", "default", "--service", "tcp-echo", "--version", v.version,
			"--port", "tcp:9000", "--port", "tcp-other:9001", "--ip", b.ip(1, i+1), "--xds-address", xds, "--otlp-endpoint", "off",
			"--", weftBin, "tcp-echo", "9000,9001,9002", v.prefix)
	}
	gw := b.ip(0, 1)
	startJoined(t, b.api(), "istio-system", "istio-ingressgateway-service-account", "gateway", "--ip", gw, "--xds-address", xds, "--otlp-endpoint", "off")
	waitHTTP(t, "http://"+gw+":15021/healthz/ready", 30*time.Second)
	api := b.api()
	apply := func(sample string) {
		t.Helper()
		if out, err := runWeft(api, "apply", "-f", tcpSample(t, sample)); err != nil {
			t.Fatalf("weft apply %s: %v\n%s", sample, err, out)
		}
	}
	echo := func() (string, error) {
		c, err := net.DialTimeout("tcp", net.JoinHostPort(gw, "31400"), 2*time.Second)
		if err != nil {
			return "", err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintln(c, "hello")
		line, err := bufio.NewReader(c).ReadString('\n')
		return strings.TrimSpace(line), err
	}
	apply("tcp-echo-all-v1.yaml")
	eventually(t, 20*time.Second, func() error {
		got, err := echo()
		if err != nil || got != "one hello" {
			return fmt.Errorf("got %q, %v", got, err)
		}
		return nil
	})
	for range 20 {
		if got, err := echo(); err != nil || got != "one hello" {
			t.Fatalf("all-v1: got %q, %v", got, err)
		}
	}
	apply("tcp-echo-20-v2.yaml")
	eventually(t, 10*time.Second, func() error {
		for range 30 {
			if got, _ := echo(); got == "two hello" {
				return nil
			}
		}
		return fmt.Errorf("no connection reached v2 after the 80/20 split")
	})
	counts := map[string]int{}
	const n = 200
	for range n {
		got, err := echo()
		if err != nil {
			t.Fatal(err)
		}
		counts[got]++
	}
	// 20% of 200: mean 40, sd about 5.7; 15..65 is beyond 4 sd either way.
	if two := counts["two hello"]; two < 15 || two > 65 || counts["one hello"]+two != n {
		t.Fatalf("80/20 over %d connections: %v", n, counts)
	}
	t.Logf("80/20 over %d connections: %v", n, counts)

	// connectionPool.tcp.idleTimeout: the gateway closes a connection that
	// stays quiet both ways for 1 s; a talking one stays open.
	idleDR := filepath.Join(t.TempDir(), "idle.yaml")
	os.WriteFile(idleDR, []byte(`apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: tcp-echo-destination, namespace: default}
spec:
  host: tcp-echo
  trafficPolicy: {connectionPool: {tcp: {idleTimeout: 1s}}}
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
`), 0o644)
	if out, err := runWeft(api, "apply", "-f", idleDR); err != nil {
		t.Fatalf("weft apply: %v\n%s", err, out)
	}
	eventually(t, 20*time.Second, func() error {
		c, err := net.DialTimeout("tcp", net.JoinHostPort(gw, "31400"), 2*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		r := bufio.NewReader(c)
		for i := range 3 { // talking every 500 ms for 1.5 s: kept
			fmt.Fprintln(c, "hello")
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if line, err := r.ReadString('\n'); err != nil || !strings.HasSuffix(strings.TrimSpace(line), " hello") {
				return fmt.Errorf("talking, exchange %d: %q, %v", i, line, err)
			}
			time.Sleep(500 * time.Millisecond)
		}
		start := time.Now()
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := r.ReadByte(); err == nil || time.Since(start) > 5*time.Second {
			return fmt.Errorf("quiet for %v: the connection is still open (%v)", time.Since(start).Round(time.Millisecond), err)
		}
		return nil
	})

	// Istio's "Authorization for TCP traffic" task on the same workloads:
	// network RBAC closes a connection its policies deny.
	apply("tcp-echo-all-v1.yaml")
	policy := func(action, to string) {
		t.Helper()
		f := filepath.Join(t.TempDir(), "ap.yaml")
		y := fmt.Sprintf("apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: tcp-policy, namespace: default}\n"+
			"spec:\n  selector: {matchLabels: {app: tcp-echo}}\n  action: %s\n  rules:\n  - to: [{operation: %s}]\n", action, to)
		if err := os.WriteFile(f, []byte(y), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := runWeft(api, "apply", "-f", f); err != nil {
			t.Fatalf("weft apply %s: %v\n%s", y, err, out)
		}
	}
	settle := func(step string, allowed bool) {
		t.Helper()
		eventually(t, 20*time.Second, func() error {
			for range 5 {
				got, err := echo()
				if ok := err == nil && got == "one hello"; ok != allowed {
					return fmt.Errorf("%s: want allowed=%v, got %q, %v", step, allowed, got, err)
				}
			}
			return nil
		})
	}
	policy("ALLOW", "{ports: [\"9000\", \"9001\"]}")
	settle("ALLOW ports 9000,9001", true)
	policy("ALLOW", "{ports: [\"9001\"]}")
	settle("ALLOW port 9001 only", false)
	policy("ALLOW", "{methods: [GET], ports: [\"9000\"]}")
	settle("ALLOW with an HTTP-only field (the rule is ignored on TCP)", false)
	policy("DENY", "{ports: [\"9001\"], methods: [GET]}")
	settle("DENY on port 9001", true)
	policy("DENY", "{ports: [\"9000\"], methods: [GET]}")
	settle("DENY with an HTTP-only field on port 9000 (denies every connection)", false)
}

func tcpSample(t *testing.T, name string) string {
	t.Helper()
	return sampleIn(t, "tcp-echo", name)
}
