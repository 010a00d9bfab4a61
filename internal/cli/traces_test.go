package cli

import (
	"bytes"
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/weft-mesh/weft/internal/controlplane/telemetry/traces"
)

func TestTraces(t *testing.T) {
	st := traces.NewStore(traces.StoreOptions{})
	p := &traces.Process{ServiceName: "productpage.default"}
	now := time.Now()
	st.Add([]*traces.Span{
		{TraceID: strings.Repeat("a", 32), SpanID: strings.Repeat("1", 16), Name: "productpage.default.svc.cluster.local:9080/*",
			Start: now, Duration: 12 * time.Millisecond, Process: p},
		{TraceID: strings.Repeat("a", 32), SpanID: strings.Repeat("2", 16), ParentSpanID: strings.Repeat("1", 16), Name: "reviews",
			Start: now.Add(time.Millisecond), Duration: 5 * time.Millisecond, Process: p, Error: true},
	})
	srv := httptest.NewServer(traces.NewHandler(st))
	defer srv.Close()

	var out, errOut bytes.Buffer
	code := RunEnv(context.Background(), &Env{Args: []string{"traces", "--control-plane", srv.URL, "--service", "productpage.default", "--limit", "5"},
		Stdout: &out, Stderr: &errOut})
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "TRACE ID") {
		t.Fatalf("output:\n%s", out.String())
	}
	f := strings.Fields(lines[1])
	if f[0] != strings.Repeat("a", 32) || f[2] != "productpage.default" || f[3] != "productpage.default.svc.cluster.local:9080/*" ||
		f[4] != "2" || f[5] != "1" || f[6] != "12ms" {
		t.Errorf("row %q", lines[1])
	}

	out.Reset()
	errOut.Reset()
	if code := RunEnv(context.Background(), &Env{Args: []string{"traces", "--control-plane", srv.URL, "--service", "nope"},
		Stdout: &out, Stderr: &errOut}); code != 0 || strings.Count(out.String(), "\n") != 1 {
		t.Errorf("no match: exit %d, output %q %s", code, out.String(), errOut.String())
	}
	if code := RunEnv(context.Background(), &Env{Args: []string{"traces", "--control-plane", srv.URL, "--limit", "-1"},
		Stdout: &out, Stderr: &errOut}); code != 1 || !strings.Contains(errOut.String(), "--limit") {
		t.Errorf("bad limit: exit %d, %s", code, errOut.String())
	}
}
