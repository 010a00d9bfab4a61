// Package temperature is weft's gRPC demo beside Bookinfo: an HTTP API
// (GET /?from=Celsius&to=Kelvin&temperature=150 → {"value":423.15,"unit":"Kelvin"})
// that calls a gRPC converter service over the mesh. Two converter versions
// run; v2 is a canary that fails a share of calls with UNAVAILABLE, so that
// routing, retries on gRPC codes, timeouts and gRPC faults can be shown.
//
// The gRPC service is described by hand (grpc.ServiceDesc) with
// google.protobuf.Struct messages, so the demo needs no generated code.
//
// Both apps can also run proxyless (Istio's proxyless gRPC, under
// `weft run --proxyless`): they link grpc-go's own xDS client, the API dials
// an xds:/// target and the converter is an xDS-managed server, both with
// xDS credentials, so the control plane's config (routes, faults, retries,
// mTLS) reaches them with no sidecar. This package is the weft binary's
// only: grpc-go's xDS packages must stay out of weft-proxy.
package temperature

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	xdscreds "google.golang.org/grpc/credentials/xds"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/xds" // the xds:/// resolver and balancers, the xDS-managed server
	"google.golang.org/protobuf/types/known/structpb"
)

// ConvertMethod is the converter's one gRPC method.
const ConvertMethod = "/weft.demo.temperature.v1.Converter/Convert"

// Units the converter knows.
var units = map[string]struct{ toKelvin, fromKelvin func(float64) float64 }{
	"celsius":    {func(c float64) float64 { return c + 273.15 }, func(k float64) float64 { return k - 273.15 }},
	"kelvin":     {func(k float64) float64 { return k }, func(k float64) float64 { return k }},
	"fahrenheit": {func(f float64) float64 { return (f-32)*5/9 + 273.15 }, func(k float64) float64 { return (k-273.15)*9/5 + 32 }},
}

// canonicalUnit names a unit as the API answers it ("Kelvin").
func canonicalUnit(u string) string {
	l := strings.ToLower(u)
	return strings.ToUpper(l[:1]) + l[1:]
}

// Convert converts t from one unit to another, rounded to 2 decimals.
func Convert(from, to string, t float64) (float64, error) {
	f, ok := units[strings.ToLower(from)]
	if !ok {
		return 0, fmt.Errorf("unknown unit %q (Celsius, Kelvin, Fahrenheit)", from)
	}
	g, ok := units[strings.ToLower(to)]
	if !ok {
		return 0, fmt.Errorf("unknown unit %q (Celsius, Kelvin, Fahrenheit)", to)
	}
	k := f.toKelvin(t)
	if k < 0 {
		return 0, fmt.Errorf("%v %s is below absolute zero", t, canonicalUnit(from))
	}
	return math.Round(g.fromKelvin(k)*100) / 100, nil
}

// ConverterOptions configure a converter server.
type ConverterOptions struct {
	// Version is reported in the "x-converter" response header (v1, v2).
	Version string
	// Instance is the workload name, reported in "x-converter-instance".
	Instance string
	// FailPercent of calls fail with UNAVAILABLE (the flaky canary).
	FailPercent float64
	// Proxyless serves with grpc-go's xDS server (xds.NewGRPCServer): it
	// takes its listener, its authorization and its mTLS from the control
	// plane named by GRPC_XDS_BOOTSTRAP, and serves once that listener came.
	Proxyless bool
	Logger    *slog.Logger
}

// converter implements the Convert method.
type converter struct{ opts ConverterOptions }

func (c *converter) convert(ctx context.Context, in *structpb.Struct) (*structpb.Struct, error) {
	who := metadata.Pairs("x-converter", c.opts.Version, "x-converter-instance", c.opts.Instance)
	if c.opts.FailPercent > 0 && rand.Float64()*100 < c.opts.FailPercent {
		// In the trailer: a failure stays a trailers-only response, whose
		// grpc-status proxies can see (and retry on) before answering.
		_ = grpc.SetTrailer(ctx, who)
		return nil, status.Error(codes.Unavailable, "converter "+c.opts.Version+" is flaky")
	}
	_ = grpc.SetHeader(ctx, who)
	f := in.GetFields()
	v, err := Convert(f["from"].GetStringValue(), f["to"].GetStringValue(), f["temperature"].GetNumberValue())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	return structpb.NewStruct(map[string]any{"value": v, "unit": canonicalUnit(f["to"].GetStringValue())})
}

// serviceDesc describes the converter service without generated code.
func serviceDesc(c *converter) *grpc.ServiceDesc {
	return &grpc.ServiceDesc{
		ServiceName: "weft.demo.temperature.v1.Converter",
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{
			MethodName: "Convert",
			Handler: func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
				in := &structpb.Struct{}
				if err := dec(in); err != nil {
					return nil, err
				}
				return c.convert(ctx, in)
			},
		}},
	}
}

// RunConverter serves the converter on addr (h2c) until ctx ends.
func RunConverter(ctx context.Context, addr string, opts ConverterOptions) error {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("converter: %w", err)
	}
	srv, err := newServer(opts)
	if err != nil {
		_ = ln.Close()
		return err
	}
	srv.RegisterService(serviceDesc(&converter{opts}), nil)
	stop := context.AfterFunc(ctx, srv.GracefulStop)
	defer stop()
	opts.Logger.Info("converter serving", "address", ln.Addr().String(), "version", opts.Version,
		"fail_percent", opts.FailPercent, "proxyless", opts.Proxyless)
	if err := srv.Serve(ln); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return err
	}
	return nil
}

// server is what RunConverter needs of *grpc.Server and *xds.GRPCServer.
type server interface {
	RegisterService(*grpc.ServiceDesc, any)
	Serve(net.Listener) error
	GracefulStop()
}

var (
	_ server = (*grpc.Server)(nil)
	_ server = (*xds.GRPCServer)(nil)
)

// newServer is a plain gRPC server, or an xDS-managed one when proxyless.
func newServer(opts ConverterOptions) (server, error) {
	if !opts.Proxyless {
		return grpc.NewServer(), nil
	}
	creds, err := xdscreds.NewServerCredentials(xdscreds.ServerOptions{FallbackCreds: insecure.NewCredentials()})
	if err != nil {
		return nil, fmt.Errorf("converter: xDS credentials: %w", err)
	}
	log := opts.Logger
	srv, err := xds.NewGRPCServer(grpc.Creds(creds), xds.ServingModeCallback(func(a net.Addr, args xds.ServingModeChangeArgs) {
		log.Info("converter serving mode", "address", a.String(), "mode", args.Mode.String(), "err", args.Err)
	}))
	if err != nil {
		return nil, fmt.Errorf("converter: xDS server (is GRPC_XDS_BOOTSTRAP set? run it under weft run --proxyless): %w", err)
	}
	return srv, nil
}

// APIOptions configure the HTTP API.
type APIOptions struct {
	// Converter is the gRPC target of the converter, e.g. "dns:///converter:50051"
	// (reached through the sidecar: HTTPS_PROXY makes grpc-go open a CONNECT
	// tunnel), or "xds:///converter.default.svc.cluster.local:50051" when
	// Proxyless.
	Converter string
	// Proxyless dials with xDS credentials: mTLS where the control plane
	// says so (DestinationRule ISTIO_MUTUAL), with the certificate the
	// bootstrap's provider names; plaintext elsewhere.
	Proxyless bool
	// Timeout bounds each conversion (default 3 s).
	Timeout time.Duration
	Logger  *slog.Logger
}

// API is the temperature HTTP API.
type API struct {
	opts APIOptions
	conn *grpc.ClientConn
}

// NewAPI connects to the converter (lazily, as grpc-go does).
func NewAPI(opts APIOptions) (*API, error) {
	if opts.Timeout == 0 {
		opts.Timeout = 3 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	var creds credentials.TransportCredentials = insecure.NewCredentials()
	if opts.Proxyless {
		c, err := xdscreds.NewClientCredentials(xdscreds.ClientOptions{FallbackCreds: insecure.NewCredentials()})
		if err != nil {
			return nil, fmt.Errorf("converter client: xDS credentials: %w", err)
		}
		creds = c
	}
	conn, err := grpc.NewClient(opts.Converter, grpc.WithTransportCredentials(creds))
	if err != nil {
		return nil, fmt.Errorf("converter client: %w", err)
	}
	return &API{opts: opts, conn: conn}, nil
}

// Close closes the converter connection.
func (a *API) Close() error { return a.conn.Close() }

// ServeHTTP answers GET /?from=&to=&temperature=.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	t, err := strconv.ParseFloat(q.Get("temperature"), 64)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": fmt.Sprintf("temperature %q: want a number", q.Get("temperature"))})
		return
	}
	in, _ := structpb.NewStruct(map[string]any{"from": q.Get("from"), "to": q.Get("to"), "temperature": t})
	ctx, cancel := context.WithTimeout(r.Context(), a.opts.Timeout)
	defer cancel()
	// Propagate the trace and the request id, as Istio asks apps to.
	var md []string
	for _, h := range []string{"x-request-id", "traceparent", "tracestate", "x-b3-traceid", "x-b3-spanid", "x-b3-parentspanid", "x-b3-sampled", "x-b3-flags", "end-user"} {
		if v := r.Header.Get(h); v != "" {
			md = append(md, h, v)
		}
	}
	ctx = metadata.AppendToOutgoingContext(ctx, md...)
	out := &structpb.Struct{}
	var header, trailer metadata.MD
	err = a.conn.Invoke(ctx, ConvertMethod, in, out, grpc.Header(&header), grpc.Trailer(&trailer))
	if v := append(header.Get("x-converter"), trailer.Get("x-converter")...); len(v) > 0 {
		w.Header().Set("x-converter", v[0])
	}
	if err != nil {
		st := status.Convert(err)
		code := http.StatusBadGateway
		switch st.Code() {
		case codes.InvalidArgument:
			code = http.StatusBadRequest
		case codes.Unavailable:
			code = http.StatusServiceUnavailable
		case codes.DeadlineExceeded:
			code = http.StatusGatewayTimeout
		}
		writeJSON(w, code, map[string]any{"error": st.Message(), "grpc_status": st.Code().String()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"value": out.GetFields()["value"].GetNumberValue(), "unit": out.GetFields()["unit"].GetStringValue()})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// RunAPI serves the API on addr until ctx ends.
func RunAPI(ctx context.Context, addr string, opts APIOptions) error {
	a, err := NewAPI(opts)
	if err != nil {
		return err
	}
	defer a.Close()
	srv := &http.Server{Addr: addr, Handler: a, ReadHeaderTimeout: 10 * time.Second}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("temperature API: %w", err)
	}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
