package e2e

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// TestProtocolSniffing: a service port whose name selects no protocol
// ("web") carries HTTP/1.1, h2c, TLS and plain TCP, as Istio's protocol
// detection allows: HTTP/1.1 and h2c get HTTP routing (a VirtualService's
// header, HTTP/2 kept upstream for h2c), TLS and everything else go
// through as TCP, over the mesh's mTLS.
func TestProtocolSniffing(t *testing.T) {
	b := newBlock(t)
	app := filepath.Join(t.TempDir(), "multiproto")
	if out, err := exec.Command("go", "build", "-o", app, "./testdata/multiproto").CombinedOutput(); err != nil {
		t.Fatalf("building multiproto: %v\n%s", err, out)
	}
	cp := b.controlPlaneIP()
	start(t, "control-plane", "--data-dir", t.TempDir(), "--http-address", cp+":15014", "--secure-xds-address", cp+":15012",
		"--otlp-grpc-address", "off", "--otlp-http-address", "off", "--console-address", "off")
	waitHTTP(t, b.api()+"/api/v1/proxies", 30*time.Second)
	secure := "--secure-xds-address=" + cp + ":15012"
	startJoined(t, b.api(), "default", "multi", "run", "--name", "multi-v1-1", "--service", "multi", "--version", "v1",
		"--port", "web:8080", "--ip", b.ip(1, 1), secure, "--otlp-endpoint", "off", "--", app)
	client := b.ip(1, 2)
	startJoined(t, b.api(), "default", "client", append([]string{"proxy", "--name", "client-v1-1", "--service", "client", "--version", "v1",
		"--port", "http:9000", "--ip", client, secure, "--otlp-endpoint", "off"}, testIsTheApp()...)...)
	for _, ip := range []string{b.ip(1, 1), client} {
		waitHTTP(t, "http://"+ip+":15021/healthz/ready", 30*time.Second)
	}
	if out, err := runWeft(b.api(), "apply", "-f", writeFile(t, "vs.yaml", `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: multi, namespace: default}
spec:
  hosts: [multi]
  http:
  - headers: {request: {set: {x-sniffed: "yes"}}}
    route: [{destination: {host: multi}}]
`)); err != nil {
		t.Fatalf("weft apply: %v\n%s", err, out)
	}
	capture := client + ":15001"
	tunnel := func(ctx context.Context) (net.Conn, error) { return connectDialer(capture)(ctx, "multi:8080") }

	tests := []struct {
		name string
		do   func() (string, error)
		want string
	}{
		{"HTTP/1.1", func() (string, error) {
			c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
				DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) { return tunnel(ctx) }}}
			resp, err := c.Get("http://multi:8080/")
			if err != nil {
				return "", err
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			return string(body), err
		}, "http HTTP/1.1 x-sniffed=yes"},
		{"h2c", func() (string, error) {
			c := &http.Client{Timeout: 5 * time.Second, Transport: &http2.Transport{AllowHTTP: true,
				DialTLSContext: func(ctx context.Context, _, _ string, _ *tls.Config) (net.Conn, error) { return tunnel(ctx) }}}
			resp, err := c.Get("http://multi:8080/")
			if err != nil {
				return "", err
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			return string(body), err
		}, "http HTTP/2.0 x-sniffed=yes"},
		{"TLS", func() (string, error) {
			conn, err := tunnel(context.Background())
			if err != nil {
				return "", err
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(5 * time.Second))
			tc := tls.Client(conn, &tls.Config{ServerName: "sniff.example", InsecureSkipVerify: true})
			fmt.Fprint(tc, "hello\n")
			return bufio.NewReader(tc).ReadString('\n')
		}, "tls:sniff.example:hello\n"},
		{"plain TCP", func() (string, error) {
			conn, err := tunnel(context.Background())
			if err != nil {
				return "", err
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(5 * time.Second))
			fmt.Fprint(conn, "hello\n")
			return bufio.NewReader(conn).ReadString('\n')
		}, "tcp:hello\n"},
	}
	for _, tt := range tests {
		var got string
		eventually(t, 30*time.Second, func() error {
			var err error
			if got, err = tt.do(); err != nil || got != tt.want {
				return fmt.Errorf("%s on an unnamed port: %q, %v; want %q", tt.name, got, err, tt.want)
			}
			return nil
		})
	}
	// The server's sidecar counted the HTTP ones as requests, the others as
	// TCP connections, all over mutual TLS.
	eventually(t, 10*time.Second, func() error {
		resp, err := http.Get("http://" + b.ip(1, 1) + ":15090/stats/prometheus")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		var http1, tcp bool
		var tcpLines []string
		for _, line := range strings.Split(string(body), "\n") {
			if strings.HasPrefix(line, "istio_tcp") {
				tcpLines = append(tcpLines, line)
			}
			if !strings.Contains(line, `reporter="destination"`) || !strings.Contains(line, `connection_security_policy="mutual_tls"`) {
				continue
			}
			http1 = http1 || strings.HasPrefix(line, "istio_requests_total{") && strings.Contains(line, `request_protocol="http"`)
			tcp = tcp || strings.HasPrefix(line, "istio_tcp_connections_opened_total{")
		}
		if !http1 || !tcp {
			return fmt.Errorf("multi's sidecar: HTTP requests counted %v, TCP connections counted %v, want both over mTLS\n%s", http1, tcp, strings.Join(tcpLines, "\n"))
		}
		return nil
	})
}
