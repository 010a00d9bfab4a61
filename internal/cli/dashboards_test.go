package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDashboardsCommand: weft dashboards lists the dashboards, prints one as
// Grafana JSON, writes them all with -o, and names the choices for an
// unknown one.
func TestDashboardsCommand(t *testing.T) {
	tests := []struct {
		name     string
		args     func(dir string) []string
		code     int
		stdout   []string
		stderr   string
		wantFile string
	}{
		{"list", func(string) []string { return []string{"dashboards"} }, 0,
			[]string{"weft-mesh", "weft-service", "weft-workload", "weft-control-plane"}, "", ""},
		{"one", func(string) []string { return []string{"dashboards", "weft-mesh"} }, 0, []string{`"uid": "weft-mesh"`}, "", ""},
		{"all to a directory", func(dir string) []string { return []string{"dashboards", "-o", dir} }, 0,
			[]string{"weft-workload.json"}, "", "weft-control-plane.json"},
		{"unknown", func(string) []string { return []string{"dashboards", "nope"} }, 1, nil, `no dashboard "nope": have weft-control-plane`, ""},
		{"two names", func(string) []string { return []string{"dashboards", "a", "b"} }, 1, nil, "usage: weft dashboards", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			out, errOut, code := runCLI(t, "", "", tc.args(dir)...)
			if code != tc.code || !strings.Contains(errOut, tc.stderr) {
				t.Fatalf("code %d, stderr %q; want %d and %q", code, errOut, tc.code, tc.stderr)
			}
			for _, w := range tc.stdout {
				if !strings.Contains(out, w) {
					t.Errorf("stdout lacks %q:\n%.500s", w, out)
				}
			}
			if tc.name == "one" && !json.Valid([]byte(out)) {
				t.Errorf("weft dashboards weft-mesh is not JSON: %.200s", out)
			}
			if tc.wantFile != "" {
				b, err := os.ReadFile(filepath.Join(dir, tc.wantFile))
				if err != nil || !json.Valid(b) {
					t.Errorf("%s: %v, valid JSON %v", tc.wantFile, err, json.Valid(b))
				}
			}
		})
	}
}
