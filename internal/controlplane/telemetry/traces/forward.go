package traces

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
)

// Bounds of a Forwarder: exports waiting to be sent (a slow or absent
// collector costs at most this many exports' memory, the rest are dropped)
// and how long one send may take.
const (
	forwardQueue   = 1024
	forwardTimeout = 10 * time.Second
)

// Forwarder sends every export the Receiver accepts on to another OTLP
// collector (Jaeger, an OpenTelemetry Collector, Tempo…), unchanged, so that
// the console's store and the user's tracing backend see the same spans.
// Exports are queued and sent by one goroutine: the proxies' exports never
// wait for the collector, and when it is slow or down they are dropped (and
// counted) rather than buffered without bound. Its methods are safe for
// concurrent use.
type Forwarder struct {
	endpoint string
	send     func(context.Context, *collectortrace.ExportTraceServiceRequest) error
	closeFn  func() error
	log      *slog.Logger
	queue    chan *collectortrace.ExportTraceServiceRequest
	done     chan struct{}
	stop     context.CancelFunc
	ctx      context.Context
	once     sync.Once
	mu       sync.RWMutex // held to send on queue; Close takes it to close queue
	closed   bool

	sent, dropped, failed atomic.Int64
}

// NewForwarder returns a Forwarder to endpoint: "host:port" is OTLP/gRPC
// (plaintext), "http://host:port[/path]" OTLP/HTTP with protobuf bodies
// (path /v1/traces when none is given). It does not wait for the endpoint.
func NewForwarder(endpoint string, logger *slog.Logger) (*Forwarder, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	f := &Forwarder{
		endpoint: endpoint,
		log:      logger.With("component", "otlp-forwarder", "endpoint", endpoint),
		queue:    make(chan *collectortrace.ExportTraceServiceRequest, forwardQueue),
		done:     make(chan struct{}),
	}
	switch {
	case strings.HasPrefix(endpoint, "http://") || strings.HasPrefix(endpoint, "https://"):
		u := endpoint
		if rest := u[strings.Index(u, "://")+3:]; !strings.Contains(rest, "/") || strings.HasSuffix(rest, "/") {
			u = strings.TrimSuffix(u, "/") + "/v1/traces"
		}
		client := &http.Client{Timeout: forwardTimeout}
		f.send = func(ctx context.Context, req *collectortrace.ExportTraceServiceRequest) error {
			return postOTLP(ctx, client, u, req)
		}
		f.closeFn = func() error { client.CloseIdleConnections(); return nil }
	case strings.Contains(endpoint, "://") || !strings.Contains(endpoint, ":"):
		return nil, fmt.Errorf("OTLP forward endpoint %q: want host:port (OTLP/gRPC) or http://host:port[/v1/traces] (OTLP/HTTP)", endpoint)
	default:
		conn, err := grpc.NewClient(endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return nil, fmt.Errorf("OTLP/gRPC client for %s: %w", endpoint, err)
		}
		client := collectortrace.NewTraceServiceClient(conn)
		f.send = func(ctx context.Context, req *collectortrace.ExportTraceServiceRequest) error {
			_, err := client.Export(ctx, req)
			return err
		}
		f.closeFn = conn.Close
	}
	f.ctx, f.stop = context.WithCancel(context.Background())
	go f.run()
	f.log.Info("forwarding received spans")
	return f, nil
}

// Forward queues an export to be sent; it never blocks. The request must
// not be changed afterwards.
func (f *Forwarder) Forward(req *collectortrace.ExportTraceServiceRequest) {
	if f == nil || len(req.GetResourceSpans()) == 0 {
		return
	}
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.closed {
		return
	}
	select {
	case f.queue <- req:
	default:
		if f.dropped.Add(1)%100 == 1 {
			f.log.Warn("the collector is not keeping up: dropping exports", "dropped", f.dropped.Load())
		}
	}
}

// Stats returns how many exports were sent, dropped (queue full) and failed
// (the collector refused them or could not be reached).
func (f *Forwarder) Stats() (sent, dropped, failed int64) {
	return f.sent.Load(), f.dropped.Load(), f.failed.Load()
}

func (f *Forwarder) run() {
	defer close(f.done)
	for req := range f.queue {
		ctx, cancel := context.WithTimeout(f.ctx, forwardTimeout)
		err := f.send(ctx, req)
		cancel()
		if err != nil {
			if f.failed.Add(1)%100 == 1 {
				f.log.Warn("forwarding spans failed", "error", err, "failed", f.failed.Load())
			}
			continue
		}
		f.sent.Add(1)
	}
}

// Close sends what is queued, for at most bound, then stops.
func (f *Forwarder) Close(bound time.Duration) error {
	if f == nil {
		return nil
	}
	var err error
	f.once.Do(func() {
		f.mu.Lock()
		f.closed = true
		close(f.queue)
		f.mu.Unlock()
		select {
		case <-f.done:
		case <-time.After(bound):
			f.stop()
			<-f.done
		}
		f.stop()
		err = f.closeFn()
	})
	return err
}

// postOTLP sends one export as OTLP/HTTP protobuf.
func postOTLP(ctx context.Context, client *http.Client, url string, req *collectortrace.ExportTraceServiceRequest) error {
	body, err := proto.Marshal(req)
	if err != nil {
		return fmt.Errorf("encoding the export: %w", err)
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("OTLP/HTTP request to %s: %w", url, err)
	}
	hreq.Header.Set("Content-Type", "application/x-protobuf")
	resp, err := client.Do(hreq)
	if err != nil {
		return fmt.Errorf("POST %s: %w", url, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("POST %s: %s: %s", url, resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}
