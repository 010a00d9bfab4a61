package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestConsoleURL(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want string
	}{
		{nil, "http://127.0.0.1:20001"},
		{map[string]string{envControlPlane: "http://127.5.0.2:15014"}, "http://127.5.0.2:20001"},
		{map[string]string{envControlPlane: "127.6.0.2:15014"}, "http://127.6.0.2:20001"},
		{map[string]string{envConsole: "http://example:9000", envControlPlane: "http://127.5.0.2:15014"}, "http://example:9000"},
	}
	for _, tt := range tests {
		if got := consoleURL(func(k string) string { return tt.env[k] }); got != tt.want {
			t.Errorf("consoleURL(%v) = %q, want %q", tt.env, got, tt.want)
		}
	}
}

func TestDashboardPrintsURL(t *testing.T) {
	var out, errb bytes.Buffer
	code := RunEnv(context.Background(), &Env{Args: []string{"dashboard", "--no-browser", "--url", "http://127.0.0.1:1", "traces"},
		Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }})
	if code != 0 || !strings.Contains(out.String(), "http://127.0.0.1:1/#/traces") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
	if !strings.Contains(errb.String(), "does not answer") {
		t.Errorf("want a warning that the console does not answer, got %q", errb.String())
	}
	if code := RunEnv(context.Background(), &Env{Args: []string{"dashboard", "--no-browser", "nope"}, Stdout: &out, Stderr: &errb}); code == 0 {
		t.Error("an unknown page should fail")
	}
}
