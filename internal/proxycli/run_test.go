package proxycli

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tcpproxy "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/weft-mesh/weft/internal/proxy"
)

// anyNode hashes every node to one snapshot.
type anyNode struct{}

func (anyNode) ID(*core.Node) string { return "any" }

// minimalXDS serves the smallest sidecar config for ip (capture listener,
// passthrough cluster) and returns the server's address.
func minimalXDS(t *testing.T, ip netip.Addr) string {
	t.Helper()
	sc := cache.NewSnapshotCache(true, anyNode{}, nil)
	tp, _ := anypb.New(&tcpproxy.TcpProxy{StatPrefix: "PassthroughCluster", ClusterSpecifier: &tcpproxy.TcpProxy_Cluster{Cluster: "PassthroughCluster"}})
	lis := &listener.Listener{
		Name: "virtualOutbound", UseOriginalDst: wrapperspb.Bool(true),
		Address: &core.Address{Address: &core.Address_SocketAddress{SocketAddress: &core.SocketAddress{
			Address: ip.String(), PortSpecifier: &core.SocketAddress_PortValue{PortValue: 15001},
		}}},
		FilterChains: []*listener.FilterChain{{Filters: []*listener.Filter{{
			Name: "envoy.filters.network.tcp_proxy", ConfigType: &listener.Filter_TypedConfig{TypedConfig: tp},
		}}}},
	}
	pass := &cluster.Cluster{Name: "PassthroughCluster", ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_ORIGINAL_DST}, LbPolicy: cluster.Cluster_CLUSTER_PROVIDED}
	snap, err := cache.NewSnapshot("v1", map[string][]types.Resource{resource.ListenerType: {lis}, resource.ClusterType: {pass}})
	if err != nil {
		t.Fatal(err)
	}
	if err := sc.SetSnapshot(context.Background(), "any", snap); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	discovery.RegisterAggregatedDiscoveryServiceServer(g, server.NewServer(context.Background(), sc, nil))
	go func() { _ = g.Serve(ln) }()
	t.Cleanup(g.Stop)
	return ln.Addr().String()
}

// syncBuffer is a bytes.Buffer safe for the child's writer and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startRun runs weft run with script as the app; it returns the exit code
// channel, the output and a cancel for weft's context.
func startRun(t *testing.T, script string) (<-chan int, *syncBuffer, context.CancelFunc, netip.Addr) {
	t.Helper()
	ip, err := proxy.RandomLoopbackIP(15000, 15001, 15006, 15021)
	if err != nil {
		t.Fatal(err)
	}
	xds := minimalXDS(t, ip)
	ctx, cancel := context.WithCancel(context.Background())
	out, errOut := &syncBuffer{}, &syncBuffer{}
	args := []string{"run", "--ip", ip.String(), "--xds-address", xds, "--service", "reviews", "--version", "v2",
		"--port", "http:9080", "--drain-time", "1s", "--log-level", "error", "--", "sh", "-c", script}
	codes, done := make(chan int, 1), make(chan struct{})
	go func() {
		defer close(done)
		codes <- RunEnv(ctx, &Env{Args: args, Stdout: out, Stderr: errOut, Getenv: func(string) string { return "" }})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("weft run did not return")
		}
		if t.Failed() {
			t.Logf("stderr: %s", errOut.String())
		}
	})
	return codes, out, cancel, ip
}

func waitCode(t *testing.T, codes <-chan int) int {
	t.Helper()
	select {
	case c := <-codes:
		return c
	case <-time.After(20 * time.Second):
		t.Fatal("weft run did not exit")
	}
	return -1
}

func TestRunChildEnvAndExitCode(t *testing.T) {
	t.Setenv("NO_PROXY", "everything")
	t.Setenv(envJoinToken, "weft.v1.secret") // the sidecar's, never the app's
	codes, out, _, ip := startRun(t, `echo "$POD_IP|$POD_NAME|$POD_NAMESPACE|$SERVICE_VERSION|$PORT|$HTTP_PROXY|$http_proxy|${NO_PROXY-unset}|${WEFT_JOIN_TOKEN-unset}"; exit 3`)
	if code := waitCode(t, codes); code != 3 {
		t.Errorf("exit code = %d, want the child's 3", code)
	}
	fields := strings.Split(strings.TrimSpace(out.String()), "|")
	want := []string{ip.String(), "", "default", "v2", "9080", "http://" + ip.String() + ":15001", "http://" + ip.String() + ":15001", "unset", "unset"}
	if len(fields) != len(want) {
		t.Fatalf("child printed %q", out.String())
	}
	for i, w := range want {
		if i == 1 {
			if !strings.HasPrefix(fields[1], "reviews-v2-") {
				t.Errorf("POD_NAME = %q, want reviews-v2-xxxxx", fields[1])
			}
			continue
		}
		if fields[i] != w {
			t.Errorf("field %d = %q, want %q (all: %q)", i, fields[i], w, out.String())
		}
	}
}

func TestRunForwardsTermination(t *testing.T) {
	codes, out, cancel, _ := startRun(t, `trap 'echo got-term; exit 0' TERM; echo started; while :; do sleep 0.05; done`)
	poll(t, "the child to start", func() bool { return strings.Contains(out.String(), "started") })
	cancel()
	if code := waitCode(t, codes); code != 0 {
		t.Errorf("exit code = %d, want 0 (the child's after its TERM trap)", code)
	}
	if !strings.Contains(out.String(), "got-term") {
		t.Errorf("child did not get SIGTERM: %q", out.String())
	}
}

func TestRunLeavesNoOrphans(t *testing.T) {
	codes, out, _, _ := startRun(t, `sleep 1000 & echo $!; exit 0`)
	if code := waitCode(t, codes); code != 0 {
		t.Fatalf("exit code = %d", code)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(out.String()))
	if err != nil {
		t.Fatalf("child printed %q", out.String())
	}
	poll(t, fmt.Sprintf("grandchild %d to be gone", pid), func() bool { return !alive(pid) })
}

// alive reports whether pid runs (zombies count as gone).
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestParseOutboundAllow(t *testing.T) {
	for _, tc := range []struct {
		in      string
		pids    []int
		uids    []uint32
		any, ok bool
	}{
		{"", nil, nil, false, true},
		{"pid:42", []int{42}, nil, false, true},
		{"uid:0, uid:1000,pid:7", []int{7}, []uint32{0, 1000}, false, true},
		{"any", nil, nil, true, true},
		{"pid:0", nil, nil, false, false},
		{"pid:x", nil, nil, false, false},
		{"uid:-1", nil, nil, false, false},
		{"user:1000", nil, nil, false, false},
		{"1000", nil, nil, false, false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			var o proxy.Options
			err := parseOutboundAllow(tc.in, &o)
			if (err == nil) != tc.ok {
				t.Fatalf("parseOutboundAllow(%q): %v, want ok=%v", tc.in, err, tc.ok)
			}
			if !tc.ok {
				return
			}
			if diff := cmp.Diff(tc.pids, o.OutboundAllowPIDs); diff != "" {
				t.Errorf("pids (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.uids, o.OutboundAllowUIDs); diff != "" {
				t.Errorf("uids (-want +got):\n%s", diff)
			}
			if o.OutboundAllowAny != tc.any {
				t.Errorf("any = %v, want %v", o.OutboundAllowAny, tc.any)
			}
		})
	}
}

// TestRunCapturePortServesOnlyTheApp: the app (here a shell and the curl
// it starts) sends through its sidecar; another local process (the test)
// using the same outbound port is refused.
func TestRunCapturePortServesOnlyTheApp(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.URL.Path)
		mu.Unlock()
		fmt.Fprint(w, "ok")
	}))
	t.Cleanup(target.Close)
	_, out, _, ip := startRun(t, fmt.Sprintf(`curl -s -m 10 %s/from-app; echo; echo done; while :; do sleep 0.05; done`, target.URL))
	poll(t, "the app's request", func() bool { return strings.Contains(out.String(), "done") })
	if !strings.HasPrefix(out.String(), "ok") {
		t.Fatalf("the app's request through its sidecar: %q, want ok", out.String())
	}
	proxyURL, _ := url.Parse("http://" + ip.String() + ":15001")
	c := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL)}, Timeout: 10 * time.Second}
	resp, err := c.Get(target.URL + "/from-test")
	if err == nil {
		resp.Body.Close()
		t.Errorf("another process through the app's sidecar: HTTP %d, want the connection refused", resp.StatusCode)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(seen, []string{"/from-app"}) {
		t.Errorf("the target saw %q, want only /from-app", seen)
	}
}
