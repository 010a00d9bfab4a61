package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestCertificateRotationUnderLoad runs two sidecars that join the mesh
// with tokens and 6 s certificates, sends steady traffic between them over
// mutual TLS for 20 s, and checks that both rotated their certificates
// (several times) without a single failed request.
func TestCertificateRotationUnderLoad(t *testing.T) {
	b := newBlock(t)
	secure := b.controlPlaneIP() + ":15012"
	start(t, "control-plane", "--data-dir", t.TempDir(), "--secure-xds-address", secure,
		"--http-address", b.controlPlaneIP()+":15014", "--otlp-grpc-address", "off", "--otlp-http-address", "off")
	waitHTTP(t, b.api()+"/api/v1/proxies", 30*time.Second)
	server, client := b.ip(1, 1), b.ip(1, 2)
	ln, err := net.Listen("tcp", net.JoinHostPort(server, "8080"))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "echo") })}
	go srv.Serve(ln)
	defer srv.Close()
	for _, p := range []struct{ name, svc, port, ip string }{{"echo-v1-1", "echo", "http:8080", server}, {"client-v1-1", "client", "http:9000", client}} {
		startJoined(t, b.api(), "default", p.svc, append([]string{"proxy", "--name", p.name, "--namespace", "default", "--service", p.svc, "--version", "v1", "--port", p.port,
			"--ip", p.ip, "--secure-xds-address", secure, "--cert-ttl", "6s", "--otlp-endpoint", "off"}, testIsTheApp()...)...)
	}
	for _, ip := range []string{server, client} {
		waitHTTP(t, "http://"+ip+":15021/healthz/ready", 30*time.Second)
	}
	serial := func(ip string) string {
		resp, err := http.Get("http://" + ip + ":15000/certs")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var certs struct {
			Certificates []struct {
				Identity     string `json:"identity"`
				SerialNumber string `json:"serial_number"`
			}
		}
		json.NewDecoder(resp.Body).Decode(&certs)
		if len(certs.Certificates) != 1 || !strings.HasPrefix(certs.Certificates[0].Identity, "spiffe://cluster.local/ns/default/sa/") {
			t.Fatalf("%s /certs: %+v", ip, certs)
		}
		return certs.Certificates[0].SerialNumber
	}
	before := map[string]string{server: serial(server), client: serial(client)}
	c := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: client + ":15001"})}, Timeout: 5 * time.Second}
	eventually(t, 20*time.Second, func() error {
		resp, err := c.Get("http://echo:8080/")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("HTTP %d", resp.StatusCode)
		}
		return nil
	})
	ok, failed := 0, 0
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := c.Get("http://echo:8080/")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 && string(body) == "echo" {
				ok++
				time.Sleep(20 * time.Millisecond)
				continue
			}
			err = fmt.Errorf("HTTP %d %q", resp.StatusCode, body)
		}
		failed++
		t.Errorf("request during rotation: %v", err)
	}
	for ip, s := range before {
		if now := serial(ip); now == s {
			t.Errorf("%s kept certificate %s through 20 s of 6 s certificates", ip, s)
		}
	}
	resp, err := http.Get("http://" + server + ":15090/stats/prometheus")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(metrics), `connection_security_policy="mutual_tls"`) {
		t.Errorf("the server's metrics show no mutual TLS traffic")
	}
	t.Logf("%d requests over rotating mTLS certificates, %d failed", ok, failed)
}
