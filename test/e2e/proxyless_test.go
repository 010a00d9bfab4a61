package e2e

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/weft-mesh/weft/internal/controlplane/ca"
	"github.com/weft-mesh/weft/internal/spiffe"
)

// proxylessConfig is the Istio YAML of the proxyless tests: service echo
// (two plain gRPC servers, v1 and v2), its subsets, and an 80/20 split
// with a header match that sends x-canary: yes to v2.
const proxylessConfig = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: echo
  namespace: default
spec:
  hosts: [echo.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports:
  - {number: 50051, name: grpc, protocol: GRPC}
  endpoints:
  - {address: %s, labels: {app: echo, version: v1}}
  - {address: %s, labels: {app: echo, version: v2}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: echo
  namespace: default
spec:
  host: echo
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: echo
  namespace: default
spec:
  hosts: [echo]
  http:
  - match:
    - headers:
        x-canary: {exact: "yes"}
    route:
    - destination: {host: echo, subset: v2}
  - route:
    - destination: {host: echo, subset: v1}
      weight: 80
    - destination: {host: echo, subset: v2}
      weight: 20
`

// proxylessAllV2 moves every call to v2.
const proxylessAllV2 = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: echo
  namespace: default
spec:
  hosts: [echo]
  http:
  - route:
    - destination: {host: echo, subset: v2}
`

// proxylessAbort fails half of the calls with UNAVAILABLE.
const proxylessAbort = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: echo
  namespace: default
spec:
  hosts: [echo]
  http:
  - fault:
      abort:
        grpcStatus: UNAVAILABLE
        percentage: {value: 50}
    route:
    - destination: {host: echo, subset: v1}
`

// TestProxylessGRPC runs grpc-go's own xDS client (xdsapp, node metadata
// GENERATOR=grpc, no sidecar) against weft control-plane: routing from
// Istio YAML, a live change, a gRPC fault, an unknown target, and the
// client in proxy-status.
func TestProxylessGRPC(t *testing.T) {
	b := newBlock(t)
	bins := buildTestPrograms(t, "./testdata/grpcecho", "./xdsapp")
	xds := b.controlPlaneIP() + ":15010"
	start(t, "control-plane", "--data-dir", t.TempDir(), "--xds-address", xds, "--http-address", b.controlPlaneIP()+":15014",
		"--secure-xds-address", "off", "--console-address", "off", "--otlp-grpc-address", "off", "--otlp-http-address", "off")
	waitHTTP(t, b.api()+"/api/v1/proxies", 30*time.Second)
	for i, v := range []string{"v1", "v2"} {
		startProgram(t, []string{"POD_IP=" + b.ip(1, i+1), "PORT=50051", "POD_NAME=echo-" + v}, bins["grpcecho"])
	}
	applyYAML(t, b.api(), fmt.Sprintf(proxylessConfig, b.ip(1, 1), b.ip(1, 2)))

	boot := writeBootstrap(t, xds, b.ip(1, 9), "xds-client-1")
	c := startXDSApp(t, bins["xdsapp"], boot, "xds:///echo.default.svc.cluster.local:50051")
	eventually(t, 30*time.Second, func() error {
		if r := c.call(t, 10); r.failed() > 0 {
			return fmt.Errorf("channel not ready: %+v", r)
		}
		return nil
	})

	t.Run("split 80/20", func(t *testing.T) {
		r := c.call(t, 1000)
		if r.failed() > 0 {
			t.Fatalf("%d calls failed: %+v", r.failed(), r)
		}
		share := 100 * float64(r.Pods["echo-v2"]) / 1000
		t.Logf("v2 got %.1f %% (want 20 ± 6), %d calls in %d ms", share, 1000, r.Millis)
		if math.Abs(share-20) > 6 {
			t.Errorf("v2 got %.1f %% of 1000 calls, want 20 ± 6: %+v", share, r)
		}
	})
	t.Run("header match", func(t *testing.T) {
		if r := c.call(t, 200, "x-canary=yes"); r.Pods["echo-v2"] != 200 {
			t.Errorf("x-canary: yes: want 200 calls to v2, got %+v", r)
		}
	})
	t.Run("live apply", func(t *testing.T) {
		applied := time.Now()
		applyYAML(t, b.api(), proxylessAllV2)
		var took time.Duration
		eventually(t, 10*time.Second, func() error {
			if r := c.call(t, 20); r.Pods["echo-v2"] != 20 {
				return fmt.Errorf("not all on v2 yet: %+v", r)
			}
			took = time.Since(applied)
			return nil
		})
		t.Logf("traffic moved %v after weft apply started", took)
		if took > 2*time.Second {
			t.Errorf("traffic moved %v after the apply, want within 2 s", took)
		}
	})
	t.Run("abort 50% UNAVAILABLE", func(t *testing.T) {
		applyYAML(t, b.api(), proxylessAbort)
		eventually(t, 10*time.Second, func() error {
			if r := c.call(t, 40); r.Pods["echo-v2"] > 0 || r.Codes["Unavailable"] == 0 {
				return fmt.Errorf("fault not in force yet: %+v", r)
			}
			return nil
		})
		r := c.call(t, 1000)
		failed := 100 * float64(r.Codes["Unavailable"]) / 1000
		t.Logf("%.1f %% failed with UNAVAILABLE (want 50 ± 6): %+v", failed, r)
		if math.Abs(failed-50) > 6 || r.Codes["Unavailable"]+r.Pods["echo-v1"] != 1000 {
			t.Errorf("want 50 ± 6 %% UNAVAILABLE and the rest from v1 over 1000 calls, got %+v", r)
		}
	})
	t.Run("unknown target", func(t *testing.T) {
		u := startXDSApp(t, bins["xdsapp"], writeBootstrap(t, xds, b.ip(1, 10), "xds-client-2"),
			"xds:///nope.default.svc.cluster.local:50051")
		r := u.call(t, 1)
		t.Logf("unknown target: %+v", r)
		// grpc-go names the missing virtual host or, depending on timing
		// (seen under load), says its resolver produced zero addresses:
		// both are its error for a target the control plane does not know.
		if r.Codes["Unavailable"] != 1 || !strings.Contains(r.LastErr, "nope.default.svc.cluster.local:50051") && !strings.Contains(r.LastErr, "produced zero addresses") {
			t.Errorf("want one call failing UNAVAILABLE with grpc-go's error for an unknown target, got %+v", r)
		}
		if r.Millis > 2000 {
			t.Errorf("the call took %d ms, want it to fail fast (under the 2 s deadline)", r.Millis)
		}
	})
	t.Run("proxy-status", func(t *testing.T) {
		out, err := runWeft(b.api(), "proxy-status", "-o", "json")
		if err != nil {
			t.Fatalf("weft proxy-status: %v\n%s", err, out)
		}
		var ps []struct {
			Name  string                             `json:"name"`
			Type  string                             `json:"type"`
			Types map[string]struct{ Status string } `json:"types"`
		}
		if err := json.Unmarshal([]byte(out), &ps); err != nil {
			t.Fatalf("proxy-status -o json: %v\n%s", err, out)
		}
		found := false
		for _, p := range ps {
			if p.Name != "xds-client-1" {
				continue
			}
			found = true
			if p.Type != "proxyless" {
				t.Errorf("xds-client-1 has type %q, want proxyless", p.Type)
			}
			for typ, st := range p.Types {
				if st.Status != "SYNCED" {
					t.Errorf("xds-client-1 %s: %s, want SYNCED", typ, st.Status)
				}
			}
		}
		if !found {
			t.Errorf("xds-client-1 missing from proxy-status:\n%s", out)
		}
		table, err := runWeft(b.api(), "proxy-status")
		if err != nil || !strings.Contains(table, "xds-client-1.default") || !strings.Contains(table, "proxyless") {
			t.Errorf("proxy-status table lacks xds-client-1 as proxyless (%v):\n%s", err, table)
		}
	})
}

// buildTestPrograms builds Go programs (package paths relative to
// test/e2e) into a temporary directory, by their base name.
func buildTestPrograms(t *testing.T, pkgs ...string) map[string]string {
	t.Helper()
	dir := t.TempDir()
	bins := map[string]string{}
	for _, p := range pkgs {
		bin := filepath.Join(dir, filepath.Base(p))
		if out, err := exec.Command("go", "build", "-o", bin, p).CombinedOutput(); err != nil {
			t.Fatalf("building %s: %v\n%s", p, err, out)
		}
		bins[filepath.Base(p)] = bin
	}
	return bins
}

// startProgram runs bin with env added in its own process group; the
// test's cleanup stops it.
func startProgram(t *testing.T, env []string, bin string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	p := &proc{cmd: cmd, out: out, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.stop(syscall.SIGTERM, 5*time.Second)
		if t.Failed() {
			t.Logf("output of %s:\n%s", filepath.Base(bin), tail(out.String(), 3000))
		}
	})
	return p
}

// applyYAML applies Istio YAML with weft apply.
func applyYAML(t *testing.T, api, yaml string) {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(yaml); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if out, err := runWeft(api, "apply", "-f", f.Name()); err != nil {
		t.Fatalf("weft apply: %v\n%s", err, out)
	}
}

// writeBootstrap writes a grpc-go xDS bootstrap for a proxyless client
// named name (namespace default, pod IP ip) of the control plane at xds
// (plaintext), with Istio's node metadata GENERATOR=grpc.
func writeBootstrap(t *testing.T, xds, ip, name string) string {
	t.Helper()
	return writeBootstrapLabels(t, xds, ip, name, map[string]any{"app": "xds-client"})
}

// writeBootstrapLabels is writeBootstrap for a workload with labels; its
// servers (xds.NewGRPCServer) ask for Istio's inbound listener names.
func writeBootstrapLabels(t *testing.T, xds, ip, name string, labels map[string]any) string {
	t.Helper()
	return writeBootstrapWith(t, xds, ip, name, labels, nil)
}

// writeBootstrapWith is writeBootstrapLabels with a workload certificate
// (nil: none): certificate provider "default" (file_watcher) on its files,
// node metadata WEFT_MTLS and SERVICE_ACCOUNT, as Istio's grpc-agent
// writes them.
func writeBootstrapWith(t *testing.T, xds, ip, name string, labels map[string]any, cert *workloadCert) string {
	t.Helper()
	boot := map[string]any{
		"server_listener_resource_name_template": "xds.istio.io/grpc/lds/inbound/%s",
		"xds_servers": []any{map[string]any{
			"server_uri":      xds,
			"channel_creds":   []any{map[string]any{"type": "insecure"}},
			"server_features": []any{"xds_v3"},
		}},
		"node": map[string]any{
			"id": fmt.Sprintf("sidecar~%s~%s.default~default.svc.cluster.local", ip, name),
			"metadata": map[string]any{
				"GENERATOR": "grpc", "NAMESPACE": "default", "INSTANCE_IPS": ip,
				"LABELS": labels,
			},
		},
	}
	if cert != nil {
		boot["certificate_providers"] = map[string]any{"default": map[string]any{
			"plugin_name": "file_watcher",
			"config": map[string]any{
				"certificate_file": cert.certFile, "private_key_file": cert.keyFile,
				"ca_certificate_file": cert.rootFile, "refresh_interval": "600s",
			},
		}}
		md := boot["node"].(map[string]any)["metadata"].(map[string]any)
		md["WEFT_MTLS"], md["SERVICE_ACCOUNT"] = "true", cert.sa
	}
	data, err := json.Marshal(boot)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "bootstrap.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// xdsApp is a running xdsapp: commands go to its stdin, answers come as
// JSON lines on its stdout.
type xdsApp struct {
	mu    sync.Mutex
	in    io.Writer
	lines chan string
	log   *lockedBuffer
}

// xdsResult is xdsapp's answer to a call command.
type xdsResult struct {
	Pods    map[string]int `json:"pods"`
	Peers   map[string]int `json:"peers"`
	Codes   map[string]int `json:"codes"`
	LastErr string         `json:"lastErr"`
	Millis  int64          `json:"millis"`
}

func (r xdsResult) failed() int {
	n := 0
	for _, c := range r.Codes {
		n += c
	}
	return n
}

func startXDSApp(t *testing.T, bin, bootstrap, target string, args ...string) *xdsApp {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"-target", target}, args...)...)
	cmd.Env = append(os.Environ(), "GRPC_XDS_BOOTSTRAP="+bootstrap, "GRPC_GO_LOG_SEVERITY_LEVEL=warning")
	return startXDSAppCmd(t, cmd, target)
}

// startXDSAppCmd starts cmd, an xdsapp client (maybe under weft run), and
// drives it through its stdin and stdout.
func startXDSAppCmd(t *testing.T, cmd *exec.Cmd, target string) *xdsApp {
	t.Helper()
	a := &xdsApp{lines: make(chan string, 16), log: &lockedBuffer{}}
	cmd.Stderr = a.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting xdsapp: %v", err)
	}
	a.in = stdin
	done := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			a.lines <- sc.Text()
		}
		close(a.lines)
	}()
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		stdin.Close()
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		if t.Failed() {
			t.Logf("xdsapp %s stderr:\n%s", target, tail(a.log.String(), 3000))
		}
	})
	return a
}

// call makes n calls with headers (NAME=VALUE) and returns the result.
func (a *xdsApp) call(t *testing.T, n int, headers ...string) xdsResult {
	t.Helper()
	return a.command(t, fmt.Sprintf("call %d %s", n, strings.Join(headers, " ")), n)
}

// each makes one call on each of the app's n channels.
func (a *xdsApp) each(t *testing.T, n int) xdsResult {
	t.Helper()
	return a.command(t, "each", n)
}

// command runs one command of n calls and returns its result.
func (a *xdsApp) command(t *testing.T, cmd string, n int) xdsResult {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, err := fmt.Fprintln(a.in, cmd); err != nil {
		t.Fatalf("xdsapp: %v\n%s", err, a.log.String())
	}
	select {
	case line, ok := <-a.lines:
		if !ok {
			t.Fatalf("xdsapp exited:\n%s", tail(a.log.String(), 3000))
		}
		var r xdsResult
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("xdsapp answer %q: %v", line, err)
		}
		return r
	case <-time.After(time.Duration(n)*2*time.Second + 10*time.Second):
		t.Fatalf("xdsapp: no answer to %d calls:\n%s", n, tail(a.log.String(), 3000))
	}
	return xdsResult{}
}

// proxylessServers is the Istio YAML of TestProxylessGRPCServer: service
// echo of two proxyless servers.
const proxylessServers = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: echo
  namespace: default
spec:
  hosts: [echo.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports:
  - {number: 50051, name: grpc, protocol: GRPC}
  endpoints:
  - {address: %s, labels: {app: echo, version: v1}}
  - {address: %s, labels: {app: echo, version: v2}}
`

// proxylessDeny denies calls that carry x-deny: yes, at the servers.
const proxylessDeny = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: echo-deny
  namespace: default
spec:
  selector:
    matchLabels: {app: echo}
  action: DENY
  rules:
  - when:
    - key: request.headers[x-deny]
      values: ["yes"]
`

// TestProxylessGRPCServer runs proxyless servers (grpc-go's
// xds.NewGRPCServer, which serves only once the control plane gave it its
// inbound listener) and a proxyless client: calls reach both servers, and
// an AuthorizationPolicy is enforced by the servers themselves.
func TestProxylessGRPCServer(t *testing.T) {
	b := newBlock(t)
	bins := buildTestPrograms(t, "./xdsapp")
	xds := b.controlPlaneIP() + ":15010"
	start(t, "control-plane", "--data-dir", t.TempDir(), "--xds-address", xds, "--http-address", b.controlPlaneIP()+":15014",
		"--secure-xds-address", "off", "--console-address", "off", "--otlp-grpc-address", "off", "--otlp-http-address", "off")
	waitHTTP(t, b.api()+"/api/v1/proxies", 30*time.Second)
	applyYAML(t, b.api(), fmt.Sprintf(proxylessServers, b.ip(1, 1), b.ip(1, 2)))
	var servers []*proc
	for i, v := range []string{"v1", "v2"} {
		ip := b.ip(1, i+1)
		boot := writeBootstrapLabels(t, xds, ip, "echo-"+v, map[string]any{"app": "echo", "version": v})
		servers = append(servers, startProgram(t, []string{"GRPC_XDS_BOOTSTRAP=" + boot, "POD_NAME=echo-" + v},
			bins["xdsapp"], "-serve", net.JoinHostPort(ip, "50051")))
	}
	c := startXDSApp(t, bins["xdsapp"], writeBootstrap(t, xds, b.ip(1, 9), "xds-client-1"), "xds:///echo.default.svc.cluster.local:50051")
	eventually(t, 30*time.Second, func() error {
		if r := c.call(t, 20); r.Pods["echo-v1"] == 0 || r.Pods["echo-v2"] == 0 || r.failed() > 0 {
			return fmt.Errorf("not both servers serving: %+v", r)
		}
		return nil
	})
	for i, s := range servers {
		if out := s.out.String(); !strings.Contains(out, "SERVING") {
			t.Errorf("server %d did not report serving from its xDS listener:\n%s", i+1, out)
		}
	}

	applyYAML(t, b.api(), proxylessDeny)
	eventually(t, 10*time.Second, func() error {
		if r := c.call(t, 20, "x-deny=yes"); r.Codes["PermissionDenied"] != 20 {
			return fmt.Errorf("x-deny: yes not denied yet: %+v", r)
		}
		return nil
	})
	if r := c.call(t, 100); r.failed() > 0 || r.Pods["echo-v1"]+r.Pods["echo-v2"] != 100 {
		t.Errorf("calls without x-deny: want 100 answered, got %+v", r)
	}

	out, err := runWeft(b.api(), "proxy-status")
	if err != nil {
		t.Fatalf("weft proxy-status: %v\n%s", err, out)
	}
	for _, name := range []string{"echo-v1.default", "echo-v2.default", "xds-client-1.default"} {
		found := false
		for _, line := range strings.Split(out, "\n") {
			if strings.HasPrefix(line, name+" ") {
				// A server subscribes to LDS only.
				found = strings.Contains(line, "proxyless") && strings.Contains(line, "SYNCED")
			}
		}
		if !found {
			t.Errorf("proxy-status lacks %s as a synced proxyless workload:\n%s", name, out)
		}
	}
}

// TestProxylessManyChannels opens 200 proxyless channels, each with its own
// xDS client and node (one process, as 200 apps would be), to one control
// plane: all become READY, all see a routing change. It logs how long each
// took (bench/RESULTS.md).
func TestProxylessManyChannels(t *testing.T) {
	const n = 200
	b := newBlock(t)
	bins := buildTestPrograms(t, "./testdata/grpcecho", "./xdsapp")
	xds := b.controlPlaneIP() + ":15010"
	cp := start(t, "control-plane", "--data-dir", t.TempDir(), "--xds-address", xds, "--http-address", b.controlPlaneIP()+":15014",
		"--secure-xds-address", "off", "--console-address", "off", "--otlp-grpc-address", "off", "--otlp-http-address", "off")
	waitHTTP(t, b.api()+"/api/v1/proxies", 30*time.Second)
	for i, v := range []string{"v1", "v2"} {
		startProgram(t, []string{"POD_IP=" + b.ip(1, i+1), "PORT=50051", "POD_NAME=echo-" + v}, bins["grpcecho"])
	}
	applyYAML(t, b.api(), fmt.Sprintf(proxylessConfig, b.ip(1, 1), b.ip(1, 2)))

	started := time.Now()
	c := startXDSApp(t, bins["xdsapp"], writeBootstrap(t, xds, b.ip(1, 9), "many"),
		"xds:///echo.default.svc.cluster.local:50051", "-channels", fmt.Sprint(n))
	var ready time.Duration
	eventually(t, 60*time.Second, func() error {
		if r := c.each(t, n); r.failed() > 0 || r.Pods["echo-v1"]+r.Pods["echo-v2"] != n {
			return fmt.Errorf("not all %d channels answered: %+v", n, r)
		}
		ready = time.Since(started)
		return nil
	})
	applied := time.Now()
	applyYAML(t, b.api(), proxylessAllV2)
	var pushed time.Duration
	eventually(t, 60*time.Second, func() error {
		if r := c.each(t, n); r.Pods["echo-v2"] != n {
			return fmt.Errorf("not all %d channels on v2 yet: %+v", n, r)
		}
		pushed = time.Since(applied)
		return nil
	})
	out, err := runWeft(b.api(), "proxy-status", "-o", "json")
	if err != nil {
		t.Fatalf("weft proxy-status: %v", err)
	}
	var ps []struct{ Type string }
	if err := json.Unmarshal([]byte(out), &ps); err != nil {
		t.Fatal(err)
	}
	proxyless := 0
	for _, p := range ps {
		if p.Type == "proxyless" {
			proxyless++
		}
	}
	if proxyless != n {
		t.Errorf("proxy-status lists %d proxyless nodes, want %d", proxyless, n)
	}
	rss := "?"
	if data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cp.cmd.Process.Pid)); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(line, "VmHWM:") {
				rss = strings.TrimSpace(strings.TrimPrefix(line, "VmHWM:"))
			}
		}
	}
	t.Logf("%d proxyless channels: all READY and answered %v after start; all on v2 %v after weft apply; control plane VmHWM %s", n, ready, pushed, rss)
}

// workloadCert is a workload certificate from the control plane's CA, on disk.
type workloadCert struct {
	sa                          string
	certFile, keyFile, rootFile string
}

// issueCert has the control plane's CA (its root under dataDir/ca) sign a
// certificate for service account sa of namespace default.
func issueCert(t *testing.T, dataDir, sa string) *workloadCert {
	t.Helper()
	authority, err := ca.New(ca.Options{DataDir: dataDir})
	if err != nil {
		t.Fatal(err)
	}
	id := spiffe.New("default", sa)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{URIs: []*url.URL{id.URL()}}, key)
	if err != nil {
		t.Fatal(err)
	}
	chain, err := authority.Sign(csr, id, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	c := &workloadCert{sa: sa, certFile: filepath.Join(dir, "cert.pem"), keyFile: filepath.Join(dir, "key.pem"), rootFile: filepath.Join(dir, "root.pem")}
	for path, data := range map[string][]byte{
		c.certFile: chain, c.rootFile: authority.TrustBundle(),
		c.keyFile: pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}),
	} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// proxylessMTLS: echo's one server, mutual TLS asked for by the client's
// DestinationRule and required by the server's PeerAuthentication.
const proxylessMTLS = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: echo
  namespace: default
spec:
  hosts: [echo.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports:
  - {number: 50051, name: grpc, protocol: GRPC}
  endpoints:
  - {address: %s, labels: {app: echo, version: v1}, serviceAccount: echo}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: echo
  namespace: default
spec:
  host: echo
  trafficPolicy:
    tls: {mode: ISTIO_MUTUAL}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: echo
  namespace: default
spec:
  selector:
    matchLabels: {app: echo}
  mtls: {mode: STRICT}
`

// TestProxylessMTLS: a proxyless client and a proxyless server, both with
// xDS credentials and certificates from weft's CA, talk mutual TLS — the
// server sees the client's SPIFFE ID — and the STRICT server refuses a
// plaintext client.
func TestProxylessMTLS(t *testing.T) {
	b := newBlock(t)
	bins := buildTestPrograms(t, "./xdsapp")
	xds := b.controlPlaneIP() + ":15010"
	dataDir := t.TempDir()
	start(t, "control-plane", "--data-dir", dataDir, "--xds-address", xds, "--http-address", b.controlPlaneIP()+":15014",
		"--secure-xds-address", "off", "--console-address", "off", "--otlp-grpc-address", "off", "--otlp-http-address", "off")
	waitHTTP(t, b.api()+"/api/v1/proxies", 30*time.Second)
	applyYAML(t, b.api(), fmt.Sprintf(proxylessMTLS, b.ip(1, 1)))

	serverIP := b.ip(1, 1)
	sboot := writeBootstrapWith(t, xds, serverIP, "echo-v1", map[string]any{"app": "echo", "version": "v1"}, issueCert(t, dataDir, "echo"))
	startProgram(t, []string{"GRPC_XDS_BOOTSTRAP=" + sboot, "POD_NAME=echo-v1"}, bins["xdsapp"], "-xds-creds", "-serve", net.JoinHostPort(serverIP, "50051"))
	const target = "xds:///echo.default.svc.cluster.local:50051"
	cboot := writeBootstrapWith(t, xds, b.ip(1, 9), "xds-client-1", map[string]any{"app": "xds-client"}, issueCert(t, dataDir, "client"))
	c := startXDSApp(t, bins["xdsapp"], cboot, target, "-xds-creds")
	const clientID = "spiffe://cluster.local/ns/default/sa/client"
	eventually(t, 30*time.Second, func() error {
		if r := c.call(t, 10); r.Peers[clientID] != 10 {
			return fmt.Errorf("not 10 calls over mTLS as %s yet: %+v", clientID, r)
		}
		return nil
	})
	if r := c.call(t, 100); r.Peers[clientID] != 100 {
		t.Errorf("want 100 calls seen by the server as %s, got %+v", clientID, r)
	}

	plain := startXDSApp(t, bins["xdsapp"], writeBootstrap(t, xds, b.ip(1, 10), "xds-client-2"), target)
	r := plain.call(t, 20)
	t.Logf("plaintext client: %+v", r)
	if r.failed() != 20 || r.Codes["Unavailable"] != 20 {
		t.Errorf("the STRICT server answered a plaintext client: %+v", r)
	}
}

// TestProxylessRun runs a proxyless server and a proxyless client each
// under `weft run --proxyless` with a join token: weft writes their
// bootstraps and keeps certificates from the control plane's CA on disk,
// and they talk mTLS (the server sees the client's SPIFFE ID) without a
// sidecar.
func TestProxylessRun(t *testing.T) {
	b := newBlock(t)
	bins := buildTestPrograms(t, "./xdsapp")
	xds, secure := b.controlPlaneIP()+":15010", b.controlPlaneIP()+":15012"
	start(t, "control-plane", "--data-dir", t.TempDir(), "--xds-address", xds, "--http-address", b.controlPlaneIP()+":15014",
		"--secure-xds-address", secure, "--console-address", "off", "--otlp-grpc-address", "off", "--otlp-http-address", "off")
	waitHTTP(t, b.api()+"/api/v1/proxies", 30*time.Second)
	applyYAML(t, b.api(), fmt.Sprintf(proxylessMTLS, b.ip(1, 1)))
	token := func(sa string) string {
		out, err := runWeft(b.api(), "token", "create", "--namespace", "default", "--service-account", sa, "--ttl", "10m")
		if err != nil {
			t.Fatalf("weft token create: %v\n%s", err, out)
		}
		return strings.Fields(out)[0]
	}
	serverIP := b.ip(1, 1)
	start(t, "run", "--proxyless", "--name", "echo-v1", "--namespace", "default", "--service-account", "echo",
		"--labels", "app=echo,version=v1", "--ip", serverIP, "--xds-address", xds, "--secure-xds-address", secure, "--token", token("echo"),
		"--", bins["xdsapp"], "-xds-creds", "-serve", net.JoinHostPort(serverIP, "50051"))
	const target = "xds:///echo.default.svc.cluster.local:50051"
	cmd := exec.Command(weftBin, "run", "--proxyless", "--name", "client-1", "--namespace", "default", "--service-account", "client",
		"--labels", "app=client", "--ip", b.ip(1, 9), "--xds-address", xds, "--secure-xds-address", secure, "--token", token("client"),
		"--", bins["xdsapp"], "-xds-creds", "-target", target)
	cmd.Env = append(os.Environ(), "WEFT_CONTROL_PLANE="+b.api())
	c := startXDSAppCmd(t, cmd, target)
	const clientID = "spiffe://cluster.local/ns/default/sa/client"
	eventually(t, 30*time.Second, func() error {
		if r := c.call(t, 10); r.Peers[clientID] != 10 || r.Pods["echo-v1"] != 10 {
			return fmt.Errorf("not 10 calls over mTLS as %s yet: %+v", clientID, r)
		}
		return nil
	})
	out, err := runWeft(b.api(), "proxy-status")
	if err != nil || !strings.Contains(out, "client-1.default") || !strings.Contains(out, "echo-v1.default") {
		t.Errorf("proxy-status lacks the proxyless workloads (%v):\n%s", err, out)
	}
	// Nothing registered itself: the ServiceEntries are the applied one.
	if out, err := runWeft(b.api(), "get", "serviceentries", "-n", "default"); err != nil || !strings.Contains(out, "echo") || strings.Contains(out, "client") {
		t.Errorf("weft get serviceentries (%v): want echo only:\n%s", err, out)
	}
	if out, err := runWeft(b.api(), "get", "workloadentries", "-n", "default"); err != nil || strings.Contains(out, "client") || strings.Contains(out, "echo-v1") {
		t.Errorf("weft get workloadentries (%v): want none:\n%s", err, out)
	}
}

// TestProxylessToSidecarWorkload: a proxyless client reaches a workload
// that runs with a sidecar and registered itself (weft run --service):
// the service, its endpoint and its port come from the auto-registration.
func TestProxylessToSidecarWorkload(t *testing.T) {
	b := newBlock(t)
	bins := buildTestPrograms(t, "./testdata/grpcecho", "./xdsapp")
	xds := b.controlPlaneIP() + ":15010"
	start(t, "control-plane", "--data-dir", t.TempDir(), "--xds-address", xds, "--http-address", b.controlPlaneIP()+":15014",
		"--secure-xds-address", b.controlPlaneIP()+":15012", "--console-address", "off", "--otlp-grpc-address", "off", "--otlp-http-address", "off")
	waitHTTP(t, b.api()+"/api/v1/proxies", 30*time.Second)
	// The sidecar registers over the authenticated port, with a join token
	// (plaintext xDS never registers a workload).
	startJoined(t, b.api(), "default", "echo", "run", "--name", "echo-v1-1", "--namespace", "default", "--service", "echo", "--version", "v1",
		"--port", "grpc:50051", "--ip", b.ip(1, 1), "--xds-address", xds, "--", bins["grpcecho"])
	c := startXDSApp(t, bins["xdsapp"], writeBootstrap(t, xds, b.ip(1, 9), "xds-client-1"), "xds:///echo.default.svc.cluster.local:50051")
	eventually(t, 30*time.Second, func() error {
		if r := c.call(t, 10); r.Pods["echo-v1-1"] != 10 {
			return fmt.Errorf("not 10 answers from echo-v1-1 yet: %+v", r)
		}
		return nil
	})
}
