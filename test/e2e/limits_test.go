package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestHugeConfigRefused is the security review's stalled control plane: a
// 5 MB VirtualService (60k routes) got no answer and kept the control plane
// busy for minutes after the client left. Now `weft apply` of it, and of
// one with too many rules, fails at once naming the limit; a request that
// is abandoned stops costing CPU; the control plane answers and applies
// legitimate config throughout.
func TestHugeConfigRefused(t *testing.T) {
	b := newBlock(t)
	dataDir := t.TempDir()
	cp := start(t, "control-plane", "--data-dir", dataDir, "--xds-address", "off",
		"--http-address", b.controlPlaneIP()+":15014", "--secure-xds-address", "off",
		"--otlp-grpc-address", "off", "--otlp-http-address", "off", "--console-address", "off")
	waitHTTP(t, b.api()+"/api/v1/proxies", 30*time.Second)

	vs := func(name string, rules int, pad int) string {
		var s strings.Builder
		fmt.Fprintf(&s, "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: %s, namespace: default}\nspec:\n  hosts: [%s]\n  http:\n", name, name)
		for i := 0; i < rules || s.Len() < pad; i++ {
			fmt.Fprintf(&s, "  - name: r%d\n    match: [{uri: {prefix: /p%d}}]\n    route: [{destination: {host: %s, subset: v1}}]\n", i, i, name)
		}
		return s.String()
	}
	tests := []struct {
		name, yaml, want string
	}{
		{"5 MB VirtualService", vs("reviews", 0, 5<<20), "one object may be at most 1572864 bytes"},
		{"5000 rules", vs("reviews", 5000, 0), "5000 routing rules (http, tls and tcp); one object may have at most 4096"},
	}
	for _, tt := range tests {
		began := time.Now()
		out, err := runWeft(b.api(), "apply", "-f", writeFile(t, "big.yaml", tt.yaml))
		took := time.Since(began)
		if err == nil || !strings.Contains(out, tt.want) {
			t.Errorf("%s: weft apply: %v\n%.400s\nwant a failure naming %q", tt.name, err, out, tt.want)
		}
		t.Logf("%s (%d bytes): refused in %v", tt.name, len(tt.yaml), took.Round(time.Millisecond))
		if took > 20*time.Second {
			t.Errorf("%s: refused after %v, want at once (it stalled the control plane before)", tt.name, took)
		}
	}
	// A large but legitimate VirtualService is applied.
	if out, err := runWeft(b.api(), "apply", "-f", writeFile(t, "ok.yaml", vs("ratings", 2000, 0))); err != nil || !strings.Contains(out, "created") {
		t.Fatalf("weft apply of 2000 rules: %v\n%s", err, out)
	}

	// 15 MB of small objects (each under the limits) from a client that
	// leaves after a second: the control plane stops parsing and analyzing
	// it instead of burning a core for minutes.
	var many strings.Builder
	for i := 0; many.Len() < 15<<20; i++ {
		many.WriteString(vs("svc"+strconv.Itoa(i), 40, 0))
		many.WriteString("---\n")
	}
	token := adminToken(t, dataDir)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, b.api()+"/api/v1/config", strings.NewReader(many.String()))
	req.Header.Set("Authorization", "Bearer "+token)
	if resp, err := (&http.Client{Transport: &http.Transport{Proxy: nil}}).Do(req); err == nil {
		resp.Body.Close()
		t.Logf("15 MB apply answered %d within a second", resp.StatusCode)
	}
	cancel()
	time.Sleep(2 * time.Second)
	before := cpuTicks(t, cp.cmd.Process.Pid)
	time.Sleep(3 * time.Second)
	used := float64(cpuTicks(t, cp.cmd.Process.Pid)-before) / 100 // USER_HZ
	t.Logf("control plane CPU 2-5 s after the client left: %.2f s in 3 s", used)
	if used > 1.5 {
		t.Errorf("the control plane used %.2f s of CPU in the 3 s after the client left, want it idle", used)
	}
	if out, err := runWeft(b.api(), "get", "virtualservices"); err != nil || !strings.Contains(out, "ratings") || strings.Contains(out, "svc0") {
		t.Errorf("weft get virtualservices after the abandoned apply: %v\n%s", err, out)
	}
}

// cpuTicks is the user+system CPU of a process, in clock ticks.
func cpuTicks(t *testing.T, pid int) int64 {
	t.Helper()
	f := procStat(pid) // state is f[0], utime f[11], stime f[12]
	if len(f) < 13 {
		t.Fatalf("no /proc/%d/stat", pid)
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return u + s
}
