package cli

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestPrometheusConfig(t *testing.T) {
	var out, errb bytes.Buffer
	code := RunEnv(t.Context(), &Env{Args: []string{"prometheus-config", "--control-plane", "127.0.3.2:15014"},
		Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }})
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, want := range []string{
		"scrape_interval: 5s",
		"job_name: weft-proxies",
		`url: "http://127.0.3.2:15014/api/v1/prometheus/targets"`,
		"refresh_interval: 5s",
		"job_name: weft-control-plane",
		`targets: ["127.0.3.2:15014"]`,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("prometheus.yml lacks %q:\n%s", want, out.String())
		}
	}
	// Prometheus's own checker, when installed.
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		return
	}
	f := filepath.Join(t.TempDir(), "prometheus.yml")
	if err := os.WriteFile(f, out.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command(promtool, "check", "config", f).CombinedOutput(); err != nil {
		t.Fatalf("promtool check config: %v\n%s", err, b)
	}
}
