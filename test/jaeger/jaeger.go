// Package jaeger runs a real Jaeger for tests: the `jaeger` binary of
// Jaeger v2 (OpenTelemetry Collector based) at the pinned [Version], all in
// one process with in-memory storage, its OTLP receivers and query API on a
// loopback address the test chooses, so that tests running side by side do
// not meet.
//
// The binary is built from the Go module proxy by test/jaeger/build.sh into
// $HOME/.cache/weft-jaeger/VERSION (or $WEFT_JAEGER_DIR), outside weft's
// go.mod; .ci/run builds it. A missing binary is an error that says which
// command makes it: the tests fail, they never skip.
//
//	j := jaeger.Start(t, "127.0.0.1") // stopped when the test ends
//	// send spans to j.OTLPGRPC (host:port) or j.OTLPHTTP (http://host:port)
//	tr, err := j.Trace(ctx, traceID)
package jaeger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Version is the Jaeger version the tests run against; build.sh builds the
// same one.
const Version = "v1.75.0"

// BuildCommand is what makes the jaeger binary, from the repository's root.
const BuildCommand = "bash test/jaeger/build.sh"

// Ports Jaeger listens on, on the server's IP.
const (
	OTLPGRPCPort = 4317
	OTLPHTTPPort = 4318
	QueryPort    = 16686
	queryGRPC    = 16685
)

// ErrNotFound is returned by Trace for a trace Jaeger does not hold.
var ErrNotFound = errors.New("trace not found")

// Binary returns the path of the jaeger binary the tests use: $WEFT_JAEGER,
// else jaeger in $WEFT_JAEGER_DIR, else in $HOME/.cache/weft-jaeger/VERSION.
func Binary() string {
	if p := os.Getenv("WEFT_JAEGER"); p != "" {
		return p
	}
	dir := os.Getenv("WEFT_JAEGER_DIR")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			home = os.TempDir()
		}
		dir = filepath.Join(home, ".cache", "weft-jaeger", Version)
	}
	return filepath.Join(dir, "jaeger")
}

// Server is a running Jaeger. Its methods are safe for concurrent use.
type Server struct {
	// OTLPGRPC is the OTLP/gRPC receiver's address, host:port.
	OTLPGRPC string
	// OTLPHTTP is the OTLP/HTTP receiver's URL, http://host:port.
	OTLPHTTP string
	// QueryURL is the query API's (and UI's) base URL, http://host:port.
	QueryURL string

	cmd    *exec.Cmd
	done   chan struct{}
	logDir string
	client *http.Client
}

// config is Jaeger's configuration: only the OTLP receivers, the memory
// store and the query API, every listener on ip, Jaeger's own telemetry
// off (its metrics would listen on a fixed port of every address).
func config(ip string) string {
	hp := func(port int) string { return net.JoinHostPort(ip, strconv.Itoa(port)) }
	return fmt.Sprintf(`service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    resource:
      service.name: jaeger
    metrics:
      level: none
    logs:
      level: info
extensions:
  jaeger_query:
    # On by default in v2: it would export Jaeger's own spans to
    # localhost:4317, and wait 10 s for it on shutdown.
    enable_tracing: false
    storage:
      traces: memstore
    http:
      endpoint: %q
    grpc:
      endpoint: %q
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 100000
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: %q
      http:
        endpoint: %q
processors:
  batch:
    timeout: 100ms
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
`, hp(QueryPort), hp(queryGRPC), hp(OTLPGRPCPort), hp(OTLPHTTPPort))
}

// Start runs Jaeger on ip (a loopback address no other test uses) and
// waits until it accepts spans and queries; the test's cleanup stops it.
// It fails the test when the binary is missing or Jaeger does not start.
func Start(t testing.TB, ip string) *Server {
	t.Helper()
	bin := Binary()
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("jaeger %s not found at %s: build it with `%s` from the repository's root (.ci/run does)", Version, bin, BuildCommand)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfg, []byte(config(ip)), 0o644); err != nil {
		t.Fatalf("writing Jaeger's config: %v", err)
	}
	logf, err := os.Create(filepath.Join(dir, "jaeger.log"))
	if err != nil {
		t.Fatalf("creating Jaeger's log: %v", err)
	}
	cmd := exec.Command(bin, "--config", cfg)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("starting %s: %v", bin, err)
	}
	s := &Server{
		OTLPGRPC: net.JoinHostPort(ip, strconv.Itoa(OTLPGRPCPort)),
		OTLPHTTP: "http://" + net.JoinHostPort(ip, strconv.Itoa(OTLPHTTPPort)),
		QueryURL: "http://" + net.JoinHostPort(ip, strconv.Itoa(QueryPort)),
		cmd:      cmd, done: make(chan struct{}), logDir: dir,
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil}},
	}
	go func() { _ = cmd.Wait(); logf.Close(); close(s.done) }()
	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			t.Logf("Jaeger's log (tail):\n%s", s.logTail(4000))
		}
	})
	if err := s.waitReady(30 * time.Second); err != nil {
		t.Fatalf("jaeger on %s: %v\n%s", ip, err, s.logTail(4000))
	}
	return s
}

// stop ends Jaeger: SIGTERM, then its whole process group after 10 s.
func (s *Server) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	<-s.done
}

func (s *Server) logTail(n int) string {
	b, _ := os.ReadFile(filepath.Join(s.logDir, "jaeger.log"))
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// waitReady polls until the query API answers and both OTLP ports accept
// connections.
func (s *Server) waitReady(bound time.Duration) error {
	deadline := time.Now().Add(bound)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return fmt.Errorf("exited before it was ready (%v)", s.cmd.ProcessState)
		default:
		}
		last = s.ready()
		if last == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("not ready within %s: %w", bound, last)
}

func (s *Server) ready() error {
	for _, addr := range []string{s.OTLPGRPC, strings.TrimPrefix(s.OTLPHTTP, "http://")} {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return err
		}
		c.Close()
	}
	var services []string
	return s.get(context.Background(), "/api/services", &services)
}

// Trace is a trace as Jaeger's query API returns it.
type Trace struct {
	TraceID   string             `json:"traceID"`
	Spans     []Span             `json:"spans"`
	Processes map[string]Process `json:"processes"`
}

// Span is one span of a Trace.
type Span struct {
	TraceID       string      `json:"traceID"`
	SpanID        string      `json:"spanID"`
	OperationName string      `json:"operationName"`
	References    []Reference `json:"references"`
	StartTime     int64       `json:"startTime"` // µs since the epoch
	Duration      int64       `json:"duration"`  // µs
	Tags          []KeyValue  `json:"tags"`
	ProcessID     string      `json:"processID"`
	Warnings      []string    `json:"warnings"`
}

// Reference links a span to another: refType CHILD_OF names its parent.
type Reference struct {
	RefType string `json:"refType"`
	TraceID string `json:"traceID"`
	SpanID  string `json:"spanID"`
}

// KeyValue is a span's or a process's tag.
type KeyValue struct {
	Key   string `json:"key"`
	Type  string `json:"type"`
	Value any    `json:"value"`
}

// Process is the service that reported spans.
type Process struct {
	ServiceName string     `json:"serviceName"`
	Tags        []KeyValue `json:"tags"`
}

// Parent returns the span id of sp's parent ("" for a root span).
func (sp Span) Parent() string {
	for _, r := range sp.References {
		if r.RefType == "CHILD_OF" {
			return r.SpanID
		}
	}
	return ""
}

// Tag returns the value of sp's tag key as a string ("" when absent).
func (sp Span) Tag(key string) string {
	for _, kv := range sp.Tags {
		if kv.Key == key {
			return fmt.Sprint(kv.Value)
		}
	}
	return ""
}

// Service returns the service name of sp's process.
func (t *Trace) Service(sp Span) string { return t.Processes[sp.ProcessID].ServiceName }

// Trace returns the trace with id traceID (32 hex digits), or ErrNotFound.
func (s *Server) Trace(ctx context.Context, traceID string) (*Trace, error) {
	var traces []*Trace
	err := s.get(ctx, "/api/traces/"+url.PathEscape(traceID), &traces)
	if err != nil {
		return nil, err
	}
	if len(traces) == 0 {
		return nil, ErrNotFound
	}
	return traces[0], nil
}

// Query selects traces for Traces.
type Query struct {
	// Service is a service that has a span in the trace (required).
	Service string
	// Tags are span tags the trace must have (all on one span).
	Tags map[string]string
	// Since is the earliest start of the traces.
	Since time.Time
	// Limit bounds the number of traces (default 100).
	Limit int
}

// Traces searches traces.
func (s *Server) Traces(ctx context.Context, q Query) ([]*Trace, error) {
	v := url.Values{"service": {q.Service}}
	if q.Limit <= 0 {
		q.Limit = 100
	}
	v.Set("limit", strconv.Itoa(q.Limit))
	if !q.Since.IsZero() {
		v.Set("start", strconv.FormatInt(q.Since.UnixMicro(), 10))
		v.Set("end", strconv.FormatInt(time.Now().Add(time.Minute).UnixMicro(), 10))
	}
	if len(q.Tags) > 0 {
		b, err := json.Marshal(q.Tags)
		if err != nil {
			return nil, fmt.Errorf("encoding tags: %w", err)
		}
		v.Set("tags", string(b))
	}
	var traces []*Trace
	if err := s.get(ctx, "/api/traces?"+v.Encode(), &traces); err != nil {
		return nil, err
	}
	return traces, nil
}

// Services lists the services Jaeger has spans of.
func (s *Server) Services(ctx context.Context) ([]string, error) {
	var services []string
	if err := s.get(ctx, "/api/services", &services); err != nil {
		return nil, err
	}
	return services, nil
}

// get decodes the data field of a query API answer into out; a 404 is
// ErrNotFound.
func (s *Server) get(ctx context.Context, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.QueryURL+path, nil)
	if err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return ErrNotFound
	}
	var body struct {
		Data   json.RawMessage `json:"data"`
		Errors []struct {
			Code int    `json:"code"`
			Msg  string `json:"msg"`
		} `json:"errors"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return fmt.Errorf("GET %s: %s: decoding: %w", path, resp.Status, err)
	}
	if resp.StatusCode != http.StatusOK || len(body.Errors) > 0 {
		return fmt.Errorf("GET %s: %s: %v", path, resp.Status, body.Errors)
	}
	if len(body.Data) == 0 || string(body.Data) == "null" {
		return nil
	}
	if err := json.Unmarshal(body.Data, out); err != nil {
		return fmt.Errorf("GET %s: decoding data: %w", path, err)
	}
	return nil
}
