package proxycli

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// runProxyCLI runs weft-proxy with args in this process.
func runProxyCLI(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = RunEnv(context.Background(), &Env{Args: args, Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }})
	return out.String(), errb.String(), code
}

func TestProxyReady(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz/ready" || calls.Add(1) < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	url := srv.URL + "/healthz/ready"
	if _, errs, code := runProxyCLI(t, "proxy-ready", "--url", url); code == 0 || !strings.Contains(errs, "503 Service Unavailable") {
		t.Errorf("a single check of a proxy not ready: exit %d, %q", code, errs)
	}
	if out, errs, code := runProxyCLI(t, "proxy-ready", "--wait", "--url", url, "--period", "10ms"); code != 0 || out != "proxy ready\n" {
		t.Errorf("--wait: exit %d, %q %q", code, out, errs)
	}
	if n := calls.Load(); n != 3 {
		t.Errorf("%d checks, want 3 (ready at the third)", n)
	}
	_, errs, code := runProxyCLI(t, "proxy-ready", "--wait", "--url", srv.URL+"/nope", "--period", "10ms", "--timeout", "100ms")
	if code == 0 || !strings.Contains(errs, "proxy not ready after 100ms") {
		t.Errorf("--wait on a proxy never ready: exit %d, %q", code, errs)
	}
}
