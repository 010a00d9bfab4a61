// Command xdsapp is a proxyless gRPC client for the end-to-end tests: it
// links grpc-go's own xDS client, dials -target (xds:///host:port) with the
// bootstrap that GRPC_XDS_BOOTSTRAP names, and runs the calls it reads on
// stdin, one command a line:
//
//	call N [HEADER=VALUE…]
//
// makes N unary grpc.health.v1.Health/Check calls (service "weft", each
// with a 2 s deadline and the given request headers) and prints one JSON
// line: how many answers each server pod gave (its "pod" response header),
// how many calls failed with each gRPC code, and the last error.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	_ "google.golang.org/grpc/xds" // the xds:/// resolver and balancers
)

// result is the answer to one call command.
type result struct {
	Pods    map[string]int `json:"pods"`
	Codes   map[string]int `json:"codes"`
	LastErr string         `json:"lastErr,omitempty"`
	Millis  int64          `json:"millis"`
}

func main() {
	target := flag.String("target", "", "xds:///host:port to dial")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix(fmt.Sprintf("xdsapp[%d] ", os.Getpid()))
	if os.Getenv("GRPC_XDS_BOOTSTRAP") == "" {
		log.Fatal("xdsapp: GRPC_XDS_BOOTSTRAP is not set")
	}
	conn, err := grpc.NewClient(*target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Fatalf("xdsapp: dialing %s: %v", *target, err)
	}
	defer conn.Close()
	hc := healthpb.NewHealthClient(conn)
	in := bufio.NewScanner(os.Stdin)
	out := json.NewEncoder(os.Stdout)
	for in.Scan() {
		fields := strings.Fields(in.Text())
		if len(fields) < 2 || fields[0] != "call" {
			log.Printf("xdsapp: unknown command %q", in.Text())
			continue
		}
		n, err := strconv.Atoi(fields[1])
		if err != nil {
			log.Printf("xdsapp: %q: %v", in.Text(), err)
			continue
		}
		var md []string
		for _, kv := range fields[2:] {
			k, v, _ := strings.Cut(kv, "=")
			md = append(md, k, v)
		}
		if err := out.Encode(calls(hc, n, md)); err != nil {
			log.Fatalf("xdsapp: %v", err)
		}
	}
}

// calls makes n calls with request headers md (key, value pairs).
func calls(hc healthpb.HealthClient, n int, md []string) result {
	r := result{Pods: map[string]int{}, Codes: map[string]int{}}
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
	}
	r.Millis = time.Since(start).Milliseconds()
	return r
}
