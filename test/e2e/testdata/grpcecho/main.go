// Command grpcecho is a gRPC server for the end-to-end tests: it serves the
// standard health service on $POD_IP:$PORT and names itself in its
// response headers, so tests can see which instance answered.
package main

import (
	"context"
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
)

func main() {
	addr := net.JoinHostPort(os.Getenv("POD_IP"), os.Getenv("PORT"))
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		log.Fatalf("grpcecho: %v", err)
	}
	pod := os.Getenv("POD_NAME")
	srv := grpc.NewServer(grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		_ = grpc.SetHeader(ctx, metadata.Pairs("pod", pod))
		return h(ctx, req)
	}), grpc.StreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		_ = ss.SetHeader(metadata.Pairs("pod", pod))
		return h(srv, ss)
	}))
	hs := health.NewServer()
	hs.SetServingStatus("weft", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(srv, hs)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() { <-ctx.Done(); srv.GracefulStop() }()
	if err := srv.Serve(lis); err != nil {
		log.Fatalf("grpcecho: %v", err)
	}
}
