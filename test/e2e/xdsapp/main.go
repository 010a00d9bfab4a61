// Command xdsapp is a proxyless gRPC client for the end-to-end tests: it
// links grpc-go's own xDS client, dials -target (xds:///host:port) with the
// bootstrap that GRPC_XDS_BOOTSTRAP names, and runs the calls it reads on
// stdin, one command a line:
//
//	call N [HEADER=VALUE…]
//	each [HEADER=VALUE…]
//
// call makes N unary grpc.health.v1.Health/Check calls (service "weft",
// each with a 2 s deadline and the given request headers) on the first
// channel, each one call on every channel (-channels N opens N, each with
// its own xDS client), and both print one JSON line: how many answers each
// server pod gave (its "pod" response header), how many calls failed with
// each gRPC code, and the last error.
//
// With -serve ADDR it is a proxyless server instead: grpc-go's
// xds.NewGRPCServer on ADDR (its listener from the control plane, by the
// bootstrap's server_listener_resource_name_template), serving the health
// service as $POD_NAME (its "pod" response header) until SIGTERM.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	xdscreds "google.golang.org/grpc/credentials/xds"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/xds" // the xds:/// resolver and balancers, the xDS server
)

// result is the answer to one call command.
type result struct {
	Pods map[string]int `json:"pods"`
	// Peers counts the identities the servers saw (their "peer" response
	// header: the client certificate's SPIFFE ID, or "none").
	Peers   map[string]int `json:"peers"`
	Codes   map[string]int `json:"codes"`
	LastErr string         `json:"lastErr,omitempty"`
	Millis  int64          `json:"millis"`
}

func main() {
	target := flag.String("target", "", "xds:///host:port to dial")
	serveAddr := flag.String("serve", "", "serve as a proxyless server on this address instead")
	channels := flag.Int("channels", 1, "open this many channels, each with its own xDS client (command each)")
	useXDSCreds := flag.Bool("xds-creds", false, "use xDS credentials (mTLS as the control plane says, certificates from the bootstrap's providers); default plaintext")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix(fmt.Sprintf("xdsapp[%d] ", os.Getpid()))
	if os.Getenv("GRPC_XDS_BOOTSTRAP") == "" {
		log.Fatal("xdsapp: GRPC_XDS_BOOTSTRAP is not set")
	}
	if *serveAddr != "" {
		if err := serve(*serveAddr, os.Getenv("POD_NAME"), *useXDSCreds); err != nil {
			log.Fatalf("xdsapp: %v", err)
		}
		return
	}
	hcs, err := dial(*target, *channels, *useXDSCreds)
	if err != nil {
		log.Fatalf("xdsapp: %v", err)
	}
	in := bufio.NewScanner(os.Stdin)
	out := json.NewEncoder(os.Stdout)
	for in.Scan() {
		fields := strings.Fields(in.Text())
		var md []string
		headers := func(kvs []string) {
			for _, kv := range kvs {
				k, v, _ := strings.Cut(kv, "=")
				md = append(md, k, v)
			}
		}
		var r result
		switch {
		case len(fields) >= 2 && fields[0] == "call":
			n, err := strconv.Atoi(fields[1])
			if err != nil {
				log.Printf("xdsapp: %q: %v", in.Text(), err)
				continue
			}
			headers(fields[2:])
			r = calls(hcs[0], n, md)
		case len(fields) >= 1 && fields[0] == "each":
			headers(fields[1:])
			r = each(hcs, md)
		default:
			log.Printf("xdsapp: unknown command %q", in.Text())
			continue
		}
		if err := out.Encode(r); err != nil {
			log.Fatalf("xdsapp: %v", err)
		}
	}
}

// dial opens n channels to target. One uses the bootstrap GRPC_XDS_BOOTSTRAP
// names, as any app; more each get their own xDS client (their own ADS
// stream), with that bootstrap's node renamed NAME-i, as n apps would.
func dial(target string, n int, useXDSCreds bool) ([]healthpb.HealthClient, error) {
	creds := grpc.WithTransportCredentials(insecure.NewCredentials())
	if useXDSCreds {
		c, err := xdscreds.NewClientCredentials(xdscreds.ClientOptions{FallbackCreds: insecure.NewCredentials()})
		if err != nil {
			return nil, fmt.Errorf("xDS credentials: %w", err)
		}
		creds = grpc.WithTransportCredentials(c)
	}
	if n <= 1 {
		conn, err := grpc.NewClient(target, creds)
		if err != nil {
			return nil, fmt.Errorf("dialing %s: %w", target, err)
		}
		return []healthpb.HealthClient{healthpb.NewHealthClient(conn)}, nil
	}
	data, err := os.ReadFile(os.Getenv("GRPC_XDS_BOOTSTRAP"))
	if err != nil {
		return nil, err
	}
	var boot map[string]any
	if err := json.Unmarshal(data, &boot); err != nil {
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	node, _ := boot["node"].(map[string]any)
	id, _ := node["id"].(string)
	parts := strings.Split(id, "~")
	if len(parts) != 4 {
		return nil, fmt.Errorf("bootstrap node id %q: want TYPE~IP~NAME.NS~DOMAIN", id)
	}
	name, ns, _ := strings.Cut(parts[2], ".")
	var out []healthpb.HealthClient
	for i := range n {
		parts[2] = fmt.Sprintf("%s-%d.%s", name, i, ns)
		node["id"] = strings.Join(parts, "~")
		cfg, err := json.Marshal(boot)
		if err != nil {
			return nil, err
		}
		rb, err := xds.NewXDSResolverWithConfigForTesting(cfg)
		if err != nil {
			return nil, fmt.Errorf("xDS resolver %d: %w", i, err)
		}
		conn, err := grpc.NewClient(target, creds, grpc.WithResolvers(rb))
		if err != nil {
			return nil, fmt.Errorf("dialing %s: %w", target, err)
		}
		out = append(out, healthpb.NewHealthClient(conn))
	}
	return out, nil
}

// each makes one call on every channel, 32 at a time.
func each(hcs []healthpb.HealthClient, md []string) result {
	r := result{Pods: map[string]int{}, Peers: map[string]int{}, Codes: map[string]int{}}
	start := time.Now()
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for _, hc := range hcs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			one := calls(hc, 1, md)
			mu.Lock()
			defer mu.Unlock()
			for k, v := range one.Pods {
				r.Pods[k] += v
			}
			for k, v := range one.Peers {
				r.Peers[k] += v
			}
			for k, v := range one.Codes {
				r.Codes[k] += v
			}
			if one.LastErr != "" {
				r.LastErr = one.LastErr
			}
		}()
	}
	wg.Wait()
	r.Millis = time.Since(start).Milliseconds()
	return r
}

// calls makes n calls with request headers md (key, value pairs).
func calls(hc healthpb.HealthClient, n int, md []string) result {
	r := result{Pods: map[string]int{}, Peers: map[string]int{}, Codes: map[string]int{}}
	start := time.Now()
	for range n {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if len(md) > 0 {
			ctx = metadata.AppendToOutgoingContext(ctx, md...)
		}
		var hdr metadata.MD
		_, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: "weft"}, grpc.Header(&hdr))
		cancel()
		if err != nil {
			r.Codes[status.Code(err).String()]++
			r.LastErr = err.Error()
			continue
		}
		pod := "?"
		if v := hdr.Get("pod"); len(v) > 0 {
			pod = v[0]
		}
		r.Pods[pod]++
		if v := hdr.Get("peer"); len(v) > 0 {
			r.Peers[v[0]]++
		}
	}
	r.Millis = time.Since(start).Milliseconds()
	return r
}

// serve runs an xDS-managed gRPC server on addr until SIGTERM or SIGINT.
// Every answer names the server (header "pod") and the client's SPIFFE ID
// as its certificate gave it (header "peer", "none" without one).
func serve(addr, pod string, useXDSCreds bool) error {
	setPod := func(ctx context.Context) {
		id := "none"
		if p, ok := peer.FromContext(ctx); ok {
			if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(ti.State.PeerCertificates) > 0 && len(ti.State.PeerCertificates[0].URIs) > 0 {
				id = ti.State.PeerCertificates[0].URIs[0].String()
			}
		}
		_ = grpc.SetHeader(ctx, metadata.Pairs("pod", pod, "peer", id))
	}
	var creds credentials.TransportCredentials = insecure.NewCredentials()
	if useXDSCreds {
		c, err := xdscreds.NewServerCredentials(xdscreds.ServerOptions{FallbackCreds: insecure.NewCredentials()})
		if err != nil {
			return fmt.Errorf("xDS credentials: %w", err)
		}
		creds = c
	}
	srv, err := xds.NewGRPCServer(
		grpc.Creds(creds),
		xds.ServingModeCallback(func(a net.Addr, args xds.ServingModeChangeArgs) {
			log.Printf("serving mode of %s: %v (%v)", a, args.Mode, args.Err)
		}),
		grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			setPod(ctx)
			return h(ctx, req)
		}))
	if err != nil {
		return fmt.Errorf("xDS server: %w", err)
	}
	hs := health.NewServer()
	hs.SetServingStatus("weft", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(srv, hs)
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() { <-ctx.Done(); srv.Stop() }()
	return srv.Serve(lis)
}
