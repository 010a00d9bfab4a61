package e2e

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestProxylessAgent runs the grpc-agent that the injector's grpc-agent
// template puts in a pod, `weft proxy --proxyless-dir DIR`, standalone: it
// writes a proxyless server's bootstrap and certificate files into DIR,
// answers /healthz/ready, and renews the certificate on disk; the server,
// started apart from it with GRPC_XDS_BOOTSTRAP=DIR/bootstrap.json as an
// app container would be, talks mTLS with a proxyless client (weft run
// --proxyless), which the server sees as its SPIFFE ID.
func TestProxylessAgent(t *testing.T) {
	b := newBlock(t)
	bins := buildTestPrograms(t, "./xdsapp")
	xds, secure := b.controlPlaneIP()+":15010", b.controlPlaneIP()+":15012"
	start(t, "control-plane", "--data-dir", t.TempDir(), "--xds-address", xds, "--http-address", b.controlPlaneIP()+":15014",
		"--secure-xds-address", secure, "--console-address", "off", "--otlp-grpc-address", "off", "--otlp-http-address", "off")
	waitHTTP(t, b.api()+"/api/v1/proxies", 30*time.Second)
	serverIP := b.ip(1, 1)
	applyYAML(t, b.api(), fmt.Sprintf(proxylessMTLS, serverIP))
	token := func(sa string) string {
		out, err := runWeft(b.api(), "token", "create", "--namespace", "default", "--service-account", sa, "--ttl", "10m")
		if err != nil {
			t.Fatalf("weft token create: %v\n%s", err, out)
		}
		return strings.Fields(out)[0]
	}
	dir := filepath.Join(t.TempDir(), "istio-xds")
	startEnv(t, []string{"WEFT_JOIN_TOKEN=" + token("echo")}, "proxy", "--proxyless-dir", dir, "--name", "echo-v1", "--namespace", "default",
		"--service-account", "echo", "--labels", "app=echo,version=v1", "--ip", serverIP, "--xds-address", xds,
		"--secure-xds-address", secure, "--cert-ttl", "6s")
	waitHTTP(t, "http://"+net.JoinHostPort(serverIP, "15021")+"/healthz/ready", 30*time.Second)
	for _, f := range []string{"bootstrap.json", "cert-chain.pem", "key.pem", "root-cert.pem"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Fatalf("ready, but the agent has not written %s: %v", f, err)
		}
	}
	startProgram(t, []string{"GRPC_XDS_BOOTSTRAP=" + filepath.Join(dir, "bootstrap.json"), "POD_NAME=echo-v1"},
		bins["xdsapp"], "-xds-creds", "-serve", net.JoinHostPort(serverIP, "50051"))

	const target = "xds:///echo.default.svc.cluster.local:50051"
	cmd := exec.Command(weftBin, "run", "--proxyless", "--name", "client-1", "--namespace", "default", "--service-account", "client",
		"--labels", "app=client", "--ip", b.ip(1, 9), "--xds-address", xds, "--secure-xds-address", secure,
		"--", bins["xdsapp"], "-xds-creds", "-target", target)
	cmd.Env = append(os.Environ(), "WEFT_CONTROL_PLANE="+b.api(), "WEFT_JOIN_TOKEN="+token("client"))
	c := startXDSAppCmd(t, cmd, target)
	const clientID = "spiffe://cluster.local/ns/default/sa/client"
	mtls := func() error {
		if r := c.call(t, 10); r.Peers[clientID] != 10 || r.Pods["echo-v1"] != 10 {
			return fmt.Errorf("not 10 calls over mTLS as %s to echo-v1: %+v", clientID, r)
		}
		return nil
	}
	eventually(t, 30*time.Second, mtls)

	first, _ := certOf(t, filepath.Join(dir, "cert-chain.pem"))
	eventually(t, 20*time.Second, func() error {
		if s, _ := certOf(t, filepath.Join(dir, "cert-chain.pem")); s == first {
			return fmt.Errorf("certificate %s not renewed yet", s)
		}
		return nil
	})
	// Calls go on over mTLS after the renewal. (On the connection made with
	// the first certificate: grpc-go's file_watcher re-reads the files every
	// 60 s for new handshakes, which this test does not wait for.)
	if err := mtls(); err != nil {
		t.Error(err)
	}
	resp, err := http.Get("http://" + net.JoinHostPort(serverIP, "15021") + "/healthz/ready")
	if err != nil || resp.StatusCode != 200 {
		t.Errorf("agent health after renewal: %v %v", resp, err)
	}
	if resp != nil {
		resp.Body.Close()
	}
}

// certOf is the serial number and end of validity of the first
// certificate in a PEM file.
func certOf(t *testing.T, path string) (string, time.Time) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(data)
	if blk == nil {
		t.Fatalf("%s: no PEM", path)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return c.SerialNumber.String(), c.NotAfter
}
