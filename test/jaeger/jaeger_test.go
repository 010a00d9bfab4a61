package jaeger

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/weft-mesh/weft/internal/proxy/tracing"
)

// TestBuildScriptPinsVersion: build.sh builds the Version the tests want,
// and the binary found is that version.
func TestBuildScriptPinsVersion(t *testing.T) {
	b, err := os.ReadFile("build.sh")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^JAEGER_VERSION=(\S+)$`).FindSubmatch(b)
	if m == nil || string(m[1]) != Version {
		t.Fatalf("build.sh builds %q, the tests want %s", m, Version)
	}
	out, err := exec.Command(Binary(), "version").Output()
	if err != nil {
		t.Fatalf("%s version: %v: build it with `%s`", Binary(), err, BuildCommand)
	}
	if !strings.Contains(string(out), `"gitVersion":"`+Version+`"`) {
		t.Errorf("%s version: %s, want %s", Binary(), out, Version)
	}
}

// TestProxySpansInJaeger exports a server span and its client child with
// the proxy's tracer, over OTLP/gRPC and OTLP/HTTP, to a real Jaeger and
// reads them back from its query API: service name, span names, the
// parent link and the remote parent of the server span.
func TestProxySpansInJaeger(t *testing.T) {
	ip := fmt.Sprintf("127.252.%d.%d", rand.IntN(250)+1, rand.IntN(250)+1)
	j := Start(t, ip)
	for _, tc := range []struct{ name, endpoint string }{
		{"OTLP/gRPC", j.OTLPGRPC},
		{"OTLP/HTTP", j.OTLPHTTP},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := tracing.New(tracing.Options{Endpoint: tc.endpoint, ServiceName: "reviews", Namespace: "default", SamplePercent: 100})
			if err != nil {
				t.Fatal(err)
			}
			traceID := fmt.Sprintf("%016x%016x", rand.Uint64(), rand.Uint64())
			in := http.Header{}
			in.Set("traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
			now := time.Now()
			server := tr.Start(tracing.ServerKind, in, "reviews.default.svc.cluster.local:9080/*", now)
			up := http.Header{}
			server.Inject(up.Set)
			client := tr.Start(tracing.ClientKind, up, "ratings.default.svc.cluster.local:9080/*", now.Add(time.Millisecond))
			client.End(now.Add(2*time.Millisecond), 200, "-")
			server.End(now.Add(3*time.Millisecond), 200, "-")
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := tr.Shutdown(ctx); err != nil {
				t.Fatalf("exporting: %v", err)
			}
			var got *Trace
			deadline := time.Now().Add(10 * time.Second)
			for {
				got, err = j.Trace(ctx, traceID)
				if err == nil && len(got.Spans) == 2 {
					break
				}
				if (err != nil && !errors.Is(err, ErrNotFound)) || time.Now().After(deadline) {
					t.Fatalf("trace %s in Jaeger: %v (%v)", traceID, err, got)
				}
				time.Sleep(100 * time.Millisecond)
			}
			byName := map[string]Span{}
			for _, sp := range got.Spans {
				byName[sp.OperationName] = sp
				if s := got.Service(sp); s != "reviews.default" {
					t.Errorf("span %s: service %q, want reviews.default", sp.OperationName, s)
				}
			}
			srv, cli := byName["reviews.default.svc.cluster.local:9080/*"], byName["ratings.default.svc.cluster.local:9080/*"]
			if srv.SpanID == "" || cli.SpanID == "" {
				t.Fatalf("span names: %v", byName)
			}
			if srv.Parent() != "00f067aa0ba902b7" {
				t.Errorf("server span's parent %q, want the caller's 00f067aa0ba902b7", srv.Parent())
			}
			if cli.Parent() != srv.SpanID {
				t.Errorf("client span's parent %q, want the server span %s", cli.Parent(), srv.SpanID)
			}
			if k := srv.Tag("span.kind"); k != "server" {
				t.Errorf("server span's span.kind %q", k)
			}
		})
	}
}
