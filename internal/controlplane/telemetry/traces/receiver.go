package traces

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// Default addresses of the OTLP receiver (OTLP's standard ports).
const (
	DefaultGRPCAddress = "127.0.0.1:4317"
	DefaultHTTPAddress = "127.0.0.1:4318"
	// Off as an address disables that receiver.
	Off = "off"
)

// maxRequestBytes bounds one export (decompressed).
const maxRequestBytes = 16 << 20

// Receiver accepts OTLP trace exports over gRPC (TraceService/Export) and
// HTTP (POST /v1/traces, protobuf or JSON, optionally gzip) into a Store.
type Receiver struct {
	collectortrace.UnimplementedTraceServiceServer
	store   *Store
	log     *slog.Logger
	grpc    *grpc.Server
	forward atomic.Pointer[Forwarder]

	mu      sync.Mutex
	servers []*http.Server
	closed  bool
}

// NewReceiver returns a receiver adding to store; logger may be nil.
func NewReceiver(store *Store, logger *slog.Logger) *Receiver {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	r := &Receiver{store: store, log: logger.With("component", "otlp-receiver")}
	r.grpc = grpc.NewServer(grpc.MaxRecvMsgSize(maxRequestBytes))
	collectortrace.RegisterTraceServiceServer(r.grpc, r)
	return r
}

// ForwardTo sends every export received from now on to f as well (nil:
// stop forwarding).
func (r *Receiver) ForwardTo(f *Forwarder) { r.forward.Store(f) }

// Export implements the OTLP gRPC TraceService.
func (r *Receiver) Export(_ context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	return r.export(req), nil
}

func (r *Receiver) export(req *collectortrace.ExportTraceServiceRequest) *collectortrace.ExportTraceServiceResponse {
	spans, rejected := fromOTLP(req.ResourceSpans)
	r.store.Add(spans)
	r.forward.Load().Forward(req)
	resp := &collectortrace.ExportTraceServiceResponse{}
	if rejected > 0 {
		resp.PartialSuccess = &collectortrace.ExportTracePartialSuccess{
			RejectedSpans: int64(rejected),
			ErrorMessage:  "spans need a 16-byte trace id and an 8-byte span id, not all zero",
		}
	}
	return resp
}

// ServeGRPC serves OTLP/gRPC on lis until Close.
func (r *Receiver) ServeGRPC(lis net.Listener) error {
	return r.grpc.Serve(lis)
}

// Start listens on the gRPC and HTTP addresses (Off or "" skips one) and
// serves them in the background until Close; it returns the bound
// addresses (nil for one that is off).
func (r *Receiver) Start(grpcAddress, httpAddress string) (grpcAddr, httpAddr net.Addr, err error) {
	var glis, hlis net.Listener
	if grpcAddress != "" && grpcAddress != Off {
		if glis, err = net.Listen("tcp", grpcAddress); err != nil {
			return nil, nil, fmt.Errorf("OTLP/gRPC address: %w", err)
		}
	}
	if httpAddress != "" && httpAddress != Off {
		if hlis, err = net.Listen("tcp", httpAddress); err != nil {
			if glis != nil {
				glis.Close()
			}
			return nil, nil, fmt.Errorf("OTLP/HTTP address: %w", err)
		}
	}
	if glis != nil {
		grpcAddr = glis.Addr()
		go func() {
			if err := r.ServeGRPC(glis); err != nil {
				r.log.Error("serving OTLP/gRPC", "address", grpcAddr.String(), "error", err)
			}
		}()
	}
	if hlis != nil {
		httpAddr = hlis.Addr()
		hs := &http.Server{Handler: r.HTTPHandler(), ReadHeaderTimeout: 10 * time.Second}
		r.mu.Lock()
		r.servers = append(r.servers, hs)
		r.mu.Unlock()
		go func() {
			if err := hs.Serve(hlis); err != nil && !errors.Is(err, http.ErrServerClosed) {
				r.log.Error("serving OTLP/HTTP", "address", httpAddr.String(), "error", err)
			}
		}()
	}
	return grpcAddr, httpAddr, nil
}

// Close stops the servers, letting exports in flight finish for a moment.
func (r *Receiver) Close() {
	r.mu.Lock()
	servers := r.servers
	r.servers = nil
	r.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, hs := range servers {
		if hs.Shutdown(ctx) != nil {
			hs.Close()
		}
	}
	done := make(chan struct{})
	go func() { r.grpc.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		r.grpc.Stop()
		<-done
	}
}

// HTTPHandler serves OTLP/HTTP: POST /v1/traces with an
// ExportTraceServiceRequest as application/x-protobuf or application/json
// (Content-Encoding gzip accepted); the response uses the request's encoding.
func (r *Receiver) HTTPHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", r.serveHTTP)
	return mux
}

func (r *Receiver) serveHTTP(w http.ResponseWriter, req *http.Request) {
	ct, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type"))
	if ct != "application/x-protobuf" && ct != "application/json" {
		http.Error(w, "Content-Type must be application/x-protobuf or application/json", http.StatusUnsupportedMediaType)
		return
	}
	var body io.Reader = http.MaxBytesReader(w, req.Body, maxRequestBytes)
	switch req.Header.Get("Content-Encoding") {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(body)
		if err != nil {
			otlpError(w, ct, http.StatusBadRequest, "reading gzip body: "+err.Error())
			return
		}
		defer zr.Close()
		body = io.LimitReader(zr, maxRequestBytes+1)
	default:
		otlpError(w, ct, http.StatusUnsupportedMediaType, "Content-Encoding must be gzip or none")
		return
	}
	data, err := io.ReadAll(body)
	if err == nil && len(data) > maxRequestBytes {
		err = fmt.Errorf("body larger than %d bytes", maxRequestBytes)
	}
	if err != nil {
		otlpError(w, ct, http.StatusBadRequest, "reading body: "+err.Error())
		return
	}
	var ereq collectortrace.ExportTraceServiceRequest
	if ct == "application/json" {
		err = unmarshalOTLPJSON(data, &ereq)
	} else {
		err = proto.Unmarshal(data, &ereq)
	}
	if err != nil {
		otlpError(w, ct, http.StatusBadRequest, "decoding ExportTraceServiceRequest: "+err.Error())
		return
	}
	writeOTLP(w, ct, http.StatusOK, r.export(&ereq))
}

func writeOTLP(w http.ResponseWriter, ct string, code int, m proto.Message) {
	var b []byte
	if ct == "application/json" {
		b, _ = protojson.Marshal(m)
	} else {
		b, _ = proto.Marshal(m)
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(code)
	w.Write(b)
}

// otlpError answers with a google.rpc.Status-shaped body as OTLP/HTTP asks.
func otlpError(w http.ResponseWriter, ct string, code int, msg string) {
	if ct == "application/json" {
		w.Header().Set("Content-Type", ct)
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(map[string]any{"code": 3, "message": msg})
		return
	}
	http.Error(w, msg, code)
}

// unmarshalOTLPJSON decodes OTLP/JSON, whose trace and span ids are hex
// (not protobuf JSON's base64): it rewrites them, then uses protojson.
func unmarshalOTLPJSON(data []byte, m proto.Message) error {
	var doc any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		return err
	}
	if err := hexIDsToBase64(doc); err != nil {
		return err
	}
	fixed, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	return protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(fixed, m)
}

var idFields = map[string]bool{
	"traceId": true, "spanId": true, "parentSpanId": true,
	"trace_id": true, "span_id": true, "parent_span_id": true,
}

func hexIDsToBase64(v any) error {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if s, ok := e.(string); ok && idFields[k] {
				b, err := hex.DecodeString(s)
				if err != nil {
					return fmt.Errorf("%s %q: want hex: %w", k, s, err)
				}
				x[k] = base64.StdEncoding.EncodeToString(b)
				continue
			}
			if err := hexIDsToBase64(e); err != nil {
				return err
			}
		}
	case []any:
		for _, e := range x {
			if err := hexIDsToBase64(e); err != nil {
				return err
			}
		}
	}
	return nil
}
