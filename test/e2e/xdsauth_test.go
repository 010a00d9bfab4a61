package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/weft-mesh/weft/internal/controlplane/api"
)

const (
	listenerType = "type.googleapis.com/envoy.config.listener.v3.Listener"
	clusterType  = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
)

const meshStrict = `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec: {mtls: {mode: STRICT}}
`

// impostor is an attacker's server on the ports a peer sidecar is
// reached on (15006, after a PROXY v2 header, and the service port): it
// counts plaintext HTTP requests, answering them "evil", and the other
// connections (TLS handshakes it cannot complete).
type impostor struct {
	plaintext, other atomic.Int64
}

func startImpostor(t *testing.T, ip string, ports ...string) *impostor {
	t.Helper()
	im := &impostor{}
	for _, port := range ports {
		ln, err := net.Listen("tcp", net.JoinHostPort(ip, port))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go im.serve(c)
			}
		}()
	}
	return im
}

// proxyV2Sig starts a PROXY protocol v2 header.
var proxyV2Sig = []byte("\r\n\r\n\x00\r\nQUIT\n")

func (im *impostor) serve(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(c)
	if head, err := r.Peek(len(proxyV2Sig) + 4); err == nil && bytes.HasPrefix(head, proxyV2Sig) {
		n := int(head[len(proxyV2Sig)+2])<<8 | int(head[len(proxyV2Sig)+3])
		if _, err := r.Discard(len(proxyV2Sig) + 4 + n); err != nil {
			return
		}
	}
	req, err := http.ReadRequest(r)
	if err != nil {
		im.other.Add(1)
		return
	}
	im.plaintext.Add(1)
	io.Copy(io.Discard, req.Body)
	io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\nevil")
}

// xdsNode is a sidecar node as weft proxy announces it; svc, if set, asks
// for registration (WEFT_SERVICE).
func xdsNode(t *testing.T, ip, name, svc string) *core.Node {
	t.Helper()
	md := map[string]any{"NAMESPACE": "default", "WORKLOAD_NAME": name, "INSTANCE_IPS": ip,
		"LABELS": map[string]any{"app": strings.Split(name, "-")[0], "version": "v1"}}
	if svc != "" {
		md["WEFT_SERVICE"] = map[string]any{"name": svc, "ports": []any{map[string]any{"name": "http", "number": 9080}}}
	}
	st, err := structpb.NewStruct(md)
	if err != nil {
		t.Fatal(err)
	}
	return &core.Node{Id: "sidecar~" + ip + "~" + name + ".default~default.svc.cluster.local", Metadata: st}
}

// plaintextADS asks the plaintext xDS port at addr for node's listeners and
// clusters, as an anonymous client: it returns what came back, or the error
// that ended the stream.
func plaintextADS(t *testing.T, addr string, node *core.Node) (map[string]*discovery.DiscoveryResponse, error) {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	stream, err := discovery.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	if err != nil {
		return nil, err
	}
	got := map[string]*discovery.DiscoveryResponse{}
	for i, typ := range []string{clusterType, listenerType} {
		req := &discovery.DiscoveryRequest{TypeUrl: typ}
		if i == 0 {
			req.Node = node
		}
		if err := stream.Send(req); err != nil {
			return got, err
		}
	}
	for len(got) < 2 {
		resp, err := stream.Recv()
		if err != nil {
			return got, err
		}
		got[resp.GetTypeUrl()] = resp
	}
	return got, nil
}

// TestPlaintextXDSCannotImpersonate reproduces the attacks on plaintext
// xDS against a mesh whose proxies join over the authenticated port, with
// mesh-wide STRICT mTLS: an anonymous client registering as ratings is
// refused and stored nowhere; one claiming a connected proxy's node gets
// no config; a ratings endpoint registered some other way (an admin's
// WorkloadEntry without mTLS) never receives plaintext, while ratings
// answers every request; and an anonymous reader of a node no one holds
// still gets its config, without SPIFFE identities.
func TestPlaintextXDSCannotImpersonate(t *testing.T) {
	b := newBlock(t)
	cp := b.controlPlaneIP()
	xds := cp + ":15010"
	start(t, "control-plane", "--data-dir", t.TempDir(), "--xds-address", xds, "--secure-xds-address", cp+":15012",
		"--http-address", cp+":15014", "--console-address", "off", "--otlp-grpc-address", "off", "--otlp-http-address", "off")
	waitHTTP(t, b.api()+"/api/v1/proxies", 30*time.Second)
	apply := func(name, yaml string) {
		t.Helper()
		if out, err := runWeft(b.api(), "apply", "-f", writeFile(t, name, yaml)); err != nil {
			t.Fatalf("weft apply %s: %v\n%s", name, err, out)
		}
	}
	apply("strict.yaml", meshStrict)

	ratingsIP, reviewsIP, evilIP := b.ip(1, 1), b.ip(1, 2), b.ip(1, 50)
	ln, err := net.Listen("tcp", net.JoinHostPort(ratingsIP, "9080"))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "legit") })}
	go srv.Serve(ln)
	defer srv.Close()
	startJoined(t, b.api(), "default", "bookinfo-ratings", "proxy", "--name", "ratings-v1-1", "--service", "ratings", "--version", "v1",
		"--port", "http:9080", "--ip", ratingsIP, "--xds-address", xds, "--otlp-endpoint", "off")
	startJoined(t, b.api(), "default", "bookinfo-reviews", append([]string{"proxy", "--name", "reviews-v1-1", "--service", "reviews", "--version", "v1",
		"--port", "http:9000", "--ip", reviewsIP, "--xds-address", xds, "--otlp-endpoint", "off"}, testIsTheApp()...)...)
	for _, ip := range []string{ratingsIP, reviewsIP} {
		waitHTTP(t, "http://"+ip+":15021/healthz/ready", 30*time.Second)
	}
	evil := startImpostor(t, evilIP, "15006", "9080")
	client := &http.Client{Timeout: 5 * time.Second,
		Transport: &http.Transport{Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: reviewsIP + ":15001"}), DisableKeepAlives: true}}
	ratings := func() string {
		resp, err := client.Get("http://ratings:9080/ratings/0")
		if err != nil {
			return "error: " + err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return fmt.Sprintf("HTTP %d %s", resp.StatusCode, body)
		}
		return string(body)
	}
	eventually(t, 30*time.Second, func() error {
		if got := ratings(); got != "legit" {
			return fmt.Errorf("reviews → ratings: %s", got)
		}
		return nil
	})
	weClient := api.NewClient(b.api())
	workloadEntry := func(name string) bool {
		t.Helper()
		objs, err := weClient.Get(context.Background(), api.Query{Kind: "we", Namespace: "default", Name: name})
		if err != nil && !strings.Contains(err.Error(), "not found") {
			t.Fatalf("weft get we %s: %v", name, err)
		}
		return len(objs) > 0
	}

	t.Run("registration over plaintext is refused", func(t *testing.T) {
		_, err := plaintextADS(t, xds, xdsNode(t, evilIP, "ratings-evil", "ratings"))
		if status.Code(err) != codes.PermissionDenied {
			t.Errorf("plaintext registration as ratings: %v, want PermissionDenied", err)
		}
		if workloadEntry("ratings-evil") {
			t.Error("WorkloadEntry ratings-evil stored from plaintext xDS")
		}
		for i := range 12 {
			if got := ratings(); got != "legit" {
				t.Errorf("request %d from reviews to ratings: %s", i, got)
			}
		}
		if n := evil.plaintext.Load() + evil.other.Load(); n != 0 {
			t.Errorf("the attacker's server got %d connections", n)
		}
	})

	t.Run("another proxy's node gets no config", func(t *testing.T) {
		for _, node := range []*core.Node{xdsNode(t, ratingsIP, "ratings-v1-1", ""), xdsNode(t, reviewsIP, "reviews-v1-1", "")} {
			got, err := plaintextADS(t, xds, node)
			if status.Code(err) != codes.PermissionDenied || len(got) != 0 {
				t.Errorf("plaintext xDS claiming %s: %d responses, %v; want none, PermissionDenied", node.GetId(), len(got), err)
			}
		}
	})

	t.Run("a node no one holds reads its config without identities", func(t *testing.T) {
		got, err := plaintextADS(t, xds, xdsNode(t, b.ip(1, 60), "reader-v1-1", ""))
		if err != nil {
			t.Fatalf("plaintext xDS for an unregistered node: %v", err)
		}
		if len(got[listenerType].GetResources()) == 0 || len(got[clusterType].GetResources()) == 0 {
			t.Errorf("plaintext reader got %d listeners, %d clusters", len(got[listenerType].GetResources()), len(got[clusterType].GetResources()))
		}
		for typ, resp := range got {
			raw, _ := proto.Marshal(resp)
			if bytes.Contains(raw, []byte("spiffe://")) {
				t.Errorf("plaintext reader's %s carry SPIFFE identities", typ)
			}
		}
	})

	t.Run("STRICT never sends plaintext to an endpoint", func(t *testing.T) {
		// An endpoint registered some other way, claiming no mTLS.
		apply("evil.yaml", "apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: ratings-evil, namespace: default}\n"+
			"spec: {address: "+evilIP+", labels: {app: ratings, version: v1}}\n")
		legit, n := 0, 0
		deadline := time.Now().Add(30 * time.Second)
		// Until the impostor is tried (it is in reviews' config), then 12 more.
		for (evil.plaintext.Load()+evil.other.Load() == 0 || n < 12) && time.Now().Before(deadline) {
			tried := evil.plaintext.Load()+evil.other.Load() > 0
			got := ratings()
			switch {
			case got == "evil":
				t.Fatalf("reviews → ratings answered by the attacker's server")
			case got != "legit":
				t.Logf("reviews → ratings: %s", got)
			case tried:
				legit++
			}
			if tried {
				n++
			}
		}
		tried := evil.other.Load()
		if p := evil.plaintext.Load(); p != 0 {
			t.Errorf("the attacker's server got %d plaintext requests under STRICT", p)
		}
		if tried == 0 {
			t.Fatal("the impostor endpoint was never tried: the test proves nothing")
		}
		if legit < n/2 {
			t.Errorf("ratings answered %d of the %d requests after the impostor appeared", legit, n)
		}
		t.Logf("%d requests, %d answered by ratings; the impostor got %d TLS attempts, 0 plaintext", n, legit, tried)
	})
}

// TestDemoTokensNotOnCommandLine runs the demo and checks that no process
// of it carries a join token on its command line (any user reads those
// with ps), that the sidecars and the gateway have theirs in their
// environment, and that no app under weft run inherits it.
func TestDemoTokensNotOnCommandLine(t *testing.T) {
	m := startDemo(t)
	pids := descendants(m.demo.cmd.Process.Pid)
	withToken := 0
	for _, pid := range pids {
		dir := "/proc/" + strconv.Itoa(pid)
		cmdline, err := os.ReadFile(dir + "/cmdline")
		if err != nil {
			continue // exited meanwhile
		}
		args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
		if strings.Contains(string(cmdline), "weft.v1.") || contains(args, "--token") {
			t.Errorf("pid %d has a join token on its command line: %q", pid, args)
		}
		environ, err := os.ReadFile(dir + "/environ")
		if err != nil {
			continue
		}
		has := bytes.Contains(environ, []byte("WEFT_JOIN_TOKEN=weft.v1."))
		proxy := len(args) > 1 && (args[1] == "run" || args[1] == "gateway")
		switch {
		case proxy && has:
			withToken++
		case proxy:
			t.Errorf("pid %d (%q) has no WEFT_JOIN_TOKEN in its environment", pid, args)
		case has:
			t.Errorf("pid %d (%q), not a proxy, inherited WEFT_JOIN_TOKEN", pid, args)
		}
	}
	if withToken < 7 { // six sidecars and the ingress gateway
		t.Errorf("%d proxies got their token through the environment, want 7", withToken)
	}
}

// descendants lists the PIDs of every process below pid.
func descendants(pid int) []int {
	children := map[int][]int{}
	for p, ppid := range processes() {
		children[ppid] = append(children[ppid], p)
	}
	var out []int
	var walk func(int)
	walk = func(p int) {
		for _, c := range children[p] {
			out = append(out, c)
			walk(c)
		}
	}
	walk(pid)
	return out
}

// TestJoinTokenOutOfArgv joins the mesh the two ways that keep the token
// off the command line: weft run with --token-file (0600; a file others
// can read is refused) and with WEFT_JOIN_TOKEN, which its app does not
// inherit. Both register over :15012 and become ready.
func TestJoinTokenOutOfArgv(t *testing.T) {
	b := newBlock(t)
	cp := b.controlPlaneIP()
	start(t, "control-plane", "--data-dir", t.TempDir(), "--secure-xds-address", cp+":15012", "--http-address", cp+":15014",
		"--console-address", "off", "--otlp-grpc-address", "off", "--otlp-http-address", "off")
	waitHTTP(t, b.api()+"/api/v1/proxies", 30*time.Second)
	dir := t.TempDir()
	tokenFile := func(name string, mode os.FileMode) string {
		t.Helper()
		f := dir + "/" + name
		if err := os.WriteFile(f, []byte(joinToken(t, b.api(), "default", "myapp")+"\n"), mode); err != nil {
			t.Fatal(err)
		}
		return f
	}
	secure := "--secure-xds-address=" + cp + ":15012"

	loose := start(t, "proxy", "--name", "loose-v1-1", "--service", "myapp", "--version", "v1", "--port", "http:8000",
		"--service-account", "myapp", "--token-file", tokenFile("loose.token", 0o644), "--ip", b.ip(1, 3), secure, "--otlp-endpoint", "off")
	select {
	case <-loose.done:
		if !strings.Contains(loose.out.String(), "readable by others") {
			t.Errorf("a join token file others can read: %s", tail(loose.out.String(), 500))
		}
	case <-time.After(20 * time.Second):
		t.Error("weft proxy ran with a join token file others can read")
	}

	start(t, "run", "--name", "myapp-v1-1", "--service", "myapp", "--version", "v1", "--port", "http:8000",
		"--service-account", "myapp", "--token-file", tokenFile("myapp.token", 0o600), "--ip", b.ip(1, 1), secure, "--otlp-endpoint", "off",
		"--", "sleep", "300")
	envFile := dir + "/app.env"
	startJoined(t, b.api(), "default", "myapp", "run", "--name", "myapp-v1-2", "--service", "myapp", "--version", "v1", "--port", "http:8000",
		"--ip", b.ip(1, 2), secure, "--otlp-endpoint", "off", "--", "sh", "-c", "env > "+envFile+"; exec sleep 300")
	for _, ip := range []string{b.ip(1, 1), b.ip(1, 2)} {
		waitHTTP(t, "http://"+ip+":15021/healthz/ready", 30*time.Second)
	}
	for _, name := range []string{"myapp-v1-1", "myapp-v1-2"} {
		objs, err := api.NewClient(b.api()).Get(context.Background(), api.Query{Kind: "we", Namespace: "default", Name: name})
		if err != nil || len(objs) != 1 {
			t.Errorf("WorkloadEntry %s: %v, %v", name, objs, err)
		}
	}
	eventually(t, 10*time.Second, func() error {
		env, err := os.ReadFile(envFile)
		if err != nil || !strings.Contains(string(env), "POD_NAME=myapp-v1-2") {
			return fmt.Errorf("the app's environment: %q, %v", env, err)
		}
		if strings.Contains(string(env), "WEFT_JOIN_TOKEN") {
			t.Errorf("the app under weft run inherited WEFT_JOIN_TOKEN")
		}
		return nil
	})
}
