package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Transparent capture as on Kubernetes, for real: network namespaces act as
// pods on a bridge, `weft iptables` redirects their traffic, their proxies
// run with --kubernetes as UID 1337, and an unmodified client — curl as an
// ordinary user — reaches http://reviews:9080/ through DNS and the
// VirtualService.

// echoEnv makes the test binary an HTTP app (see TestMain): it answers
// "NAME from REMOTE_IP" on ADDR.
const echoEnv = "WEFT_E2E_ECHO"

// serveEcho runs the echo app if the environment asks for it; it never
// returns then.
func serveEcho() {
	spec := os.Getenv(echoEnv)
	if spec == "" {
		return
	}
	addr, name, _ := strings.Cut(spec, " ")
	err := http.ListenAndServe(addr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		fmt.Fprintf(w, "%s from %s\n", name, host)
	}))
	fmt.Fprintln(os.Stderr, "echo:", err)
	os.Exit(1)
}

// netnsLab is a test's network namespaces on one bridge: 10.A.B.0/24 and
// fd00:A:B::/64, the hub (bridge, control plane) at .1.
type netnsLab struct {
	t      *testing.T
	prefix string // namespace name prefix, unique per test
	a, b   int
	spaces []string
}

func (l *netnsLab) ip(n int) string  { return fmt.Sprintf("10.%d.%d.%d", l.a, l.b, n) }
func (l *netnsLab) ip6(n int) string { return fmt.Sprintf("fd00:%x:%x::%x", l.a, l.b, n) }
func (l *netnsLab) ns(name string) string {
	return l.prefix + "-" + name
}

func ipCmd(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

func newNetnsLab(t *testing.T) *netnsLab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("transparent capture test: needs root (network namespaces, iptables)")
	}
	for _, tool := range []string{"ip", "iptables-restore", "iptables-save", "curl", "setpriv"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("transparent capture test: needs %s (Debian: apt-get install iproute2 iptables curl util-linux)", tool)
		}
	}
	var sfx [3]byte
	_, _ = rand.Read(sfx[:])
	a, _ := rand.Int(rand.Reader, big.NewInt(250))
	b, _ := rand.Int(rand.Reader, big.NewInt(250))
	l := &netnsLab{t: t, prefix: "wcap-" + hex.EncodeToString(sfx[:]), a: int(a.Int64()) + 1, b: int(b.Int64()) + 1}
	// Deleted last (cleanups run in reverse): after every process is gone.
	t.Cleanup(func() {
		for _, ns := range l.spaces {
			_ = exec.Command("ip", "netns", "del", ns).Run()
			_ = os.RemoveAll(filepath.Join("/etc/netns", ns))
		}
	})
	hub := l.add("hub")
	ipCmd(t, "-n", hub, "link", "add", "br0", "type", "bridge")
	ipCmd(t, "-n", hub, "addr", "add", l.ip(1)+"/24", "dev", "br0")
	ipCmd(t, "-n", hub, "addr", "add", l.ip6(1)+"/64", "dev", "br0", "nodad")
	ipCmd(t, "-n", hub, "link", "set", "br0", "up")
	return l
}

// add creates a namespace with loopback up and a resolv.conf whose name
// server (.253) does not exist: only the DNS capture can answer it.
func (l *netnsLab) add(name string) string {
	ns := l.ns(name)
	ipCmd(l.t, "netns", "add", ns)
	l.spaces = append(l.spaces, ns)
	ipCmd(l.t, "-n", ns, "link", "set", "lo", "up")
	dir := filepath.Join("/etc/netns", ns)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		l.t.Fatal(err)
	}
	conf := fmt.Sprintf("nameserver %s\nsearch default.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5 timeout:1 attempts:1\n", l.ip(253))
	if err := os.WriteFile(filepath.Join(dir, "resolv.conf"), []byte(conf), 0o644); err != nil {
		l.t.Fatal(err)
	}
	return ns
}

// pod adds a namespace wired to the hub's bridge with address .n.
func (l *netnsLab) pod(name string, n int) string {
	ns := l.add(name)
	hubSide := fmt.Sprintf("veth%d", n)
	ipCmd(l.t, "-n", l.ns("hub"), "link", "add", hubSide, "type", "veth", "peer", "name", "eth0", "netns", ns)
	ipCmd(l.t, "-n", l.ns("hub"), "link", "set", hubSide, "master", "br0", "up")
	ipCmd(l.t, "-n", ns, "addr", "add", l.ip(n)+"/24", "dev", "eth0")
	ipCmd(l.t, "-n", ns, "addr", "add", l.ip6(n)+"/64", "dev", "eth0", "nodad")
	ipCmd(l.t, "-n", ns, "link", "set", "eth0", "up")
	return ns
}

// run runs a command in ns as uid (0: root) and returns its output.
func (l *netnsLab) run(ns string, uid int, args ...string) (string, error) {
	cmd := l.command(ns, uid, nil, args...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (l *netnsLab) command(ns string, uid int, env []string, args ...string) *exec.Cmd {
	argv := []string{"netns", "exec", ns}
	if uid != 0 {
		id := fmt.Sprint(uid)
		argv = append(argv, "setpriv", "--reuid", id, "--regid", id, "--clear-groups", "--")
	}
	cmd := exec.Command("ip", append(argv, args...)...)
	cmd.Env = append(os.Environ(), env...)
	return cmd
}

// start runs a long-lived command in ns; t.Cleanup stops its process group.
func (l *netnsLab) start(ns string, uid int, env []string, args ...string) *proc {
	l.t.Helper()
	cmd := l.command(ns, uid, env, args...)
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		l.t.Fatalf("starting %v in %s: %v", args, ns, err)
	}
	p := &proc{cmd: cmd, out: out, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	l.t.Cleanup(func() {
		p.stop(syscall.SIGTERM, 5*time.Second)
		if l.t.Failed() {
			l.t.Logf("output of %s in %s:\n%s", strings.Join(args, " "), ns, tail(out.String(), 3000))
		}
	})
	return p
}

const captureMesh = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews.default.svc.cluster.local]
  addresses: [{{VIP}}, "{{VIP6}}"]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: reviews}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: echo, namespace: default}
spec:
  hosts: [echo.example.com]
  addresses: [{{ECHOVIP}}]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{number: 9001, name: tcp, protocol: TCP}]
  endpoints: [{address: {{HUB}}}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v1, namespace: default}
spec: {address: {{V1}}, labels: {app: reviews, version: v1}, serviceAccount: bookinfo-reviews}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v2, namespace: default}
spec: {address: {{V2}}, labels: {app: reviews, version: v2}, serviceAccount: bookinfo-reviews}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - match: [{headers: {end-user: {exact: jason}}}]
    route: [{destination: {host: reviews, subset: v1}}]
  - route: [{destination: {host: reviews, subset: v2}}]
`

func TestTransparentCapture(t *testing.T) {
	t.Parallel()
	l := newNetnsLab(t)
	// The proxies run as UID 1337: they must reach the binary.
	if err := os.Chmod(filepath.Dir(weftBin), 0o755); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable() // the echo apps (run as root)
	if err != nil {
		t.Fatal(err)
	}
	hub := l.ns("hub")
	v1, v2, client := l.pod("v1", 11), l.pod("v2", 12), l.pod("client", 13)
	vip, vip6 := l.ip(200), l.ip6(200)

	cfgDir := t.TempDir()
	yaml := strings.NewReplacer("{{VIP6}}", vip6, "{{VIP}}", vip, "{{ECHOVIP}}", l.ip(201), "{{HUB}}", l.ip(1), "{{V1}}", l.ip(11), "{{V2}}", l.ip(12)).Replace(captureMesh)
	if err := os.WriteFile(filepath.Join(cfgDir, "reviews.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	l.start(hub, 0, nil, weftBin, "control-plane", "--config-dir", cfgDir, "--data-dir", t.TempDir(),
		"--xds-address", l.ip(1)+":15010", "--http-address", l.ip(1)+":15014", "--secure-xds-address", "off",
		"--otlp-grpc-address", "off", "--otlp-http-address", "off", "--console-address", "off")

	// A TCP server outside the mesh: only SO_ORIGINAL_DST tells the client's
	// proxy where raw bytes were going (an HTTP proxy could not tell).
	for _, ip := range []string{l.ip(1), l.ip6(1)} {
		l.start(hub, 0, []string{"POD_IP=" + ip}, weftBin, "tcp-echo", "9000", "hello")
	}
	// And one the mesh knows: ServiceEntry echo.example.com (TCP, a VIP).
	l.start(hub, 0, []string{"POD_IP=" + l.ip(1)}, weftBin, "tcp-echo", "9001", "mesh")

	for _, p := range []struct {
		ns, name, version string
		n                 int
	}{{v1, "reviews-v1", "v1", 11}, {v2, "reviews-v2", "v2", 12}, {client, "client", "", 13}} {
		if out, err := l.run(p.ns, 0, weftBin, "iptables", "-p", "15001", "-z", "15006", "-u", "1337", "-g", "1337",
			"-m", "REDIRECT", "-i", "*", "-x", "", "-b", "*", "-d", "15090,15021,15020", "--redirect-dns"); err != nil {
			t.Fatalf("weft iptables in %s: %v\n%s", p.ns, err, out)
		}
		if p.version != "" {
			l.start(p.ns, 0, []string{echoEnv + "=" + l.ip(p.n) + ":9080 " + p.name}, self)
		}
		labels := "app=" + strings.TrimSuffix(p.name, "-"+p.version)
		if p.version != "" {
			labels += ",version=" + p.version
		}
		l.start(p.ns, 1337, []string{"POD_NAME=" + p.name, "POD_NAMESPACE=default", "INSTANCE_IP=" + l.ip(p.n),
			"SERVICE_ACCOUNT=bookinfo-" + strings.TrimSuffix(p.name, "-"+p.version)},
			weftBin, "proxy", "--kubernetes", "--xds-address", l.ip(1)+":15010", "--otlp-endpoint", "off", "--labels", labels, "--log-level", "debug")
	}

	curl := func(args ...string) func() (string, error) {
		return func() (string, error) {
			out, err := l.run(client, 1000, append([]string{"curl", "-sS", "--max-time", "3"}, args...)...)
			return strings.TrimSpace(out), err
		}
	}
	want := func(get func() (string, error), prefix string) func() error {
		return func() error {
			out, err := get()
			if err != nil || !strings.HasPrefix(out, prefix) {
				return fmt.Errorf("got %q (%v), want %q", out, err, prefix)
			}
			return nil
		}
	}
	// The apps see 127.0.0.6: every request came in through their sidecar.
	eventually(t, 20*time.Second, want(curl("http://reviews:9080/"), "reviews-v2 from 127.0.0.6"))
	for _, u := range []string{"http://reviews:9080/", "http://reviews.default:9080/", "http://reviews.default.svc.cluster.local:9080/"} {
		if err := want(curl(u), "reviews-v2 from 127.0.0.6")(); err != nil {
			t.Errorf("%s: %v", u, err)
		}
		if err := want(curl("-H", "end-user: jason", u), "reviews-v1 from 127.0.0.6")(); err != nil {
			t.Errorf("%s as jason: %v", u, err)
		}
	}
	// To a pod IP: the client's sidecar passes it through, the pod's
	// inbound capture takes it (SO_ORIGINAL_DST) to its app.
	if err := want(curl("http://"+l.ip(11)+":9080/"), "reviews-v1 from 127.0.0.6")(); err != nil {
		t.Errorf("to the v1 pod IP: %v", err)
	}
	// IPv6: the AAAA answer is the v6 VIP, ip6tables redirects to [::]:15001
	// (IP6T_SO_ORIGINAL_DST), and a v6 pod IP is captured inbound too.
	if err := want(curl("-6", "http://reviews:9080/"), "reviews-v2 from 127.0.0.6")(); err != nil {
		t.Errorf("over IPv6 to the VIP: %v", err)
	}
	if err := want(curl("-6", "-H", "end-user: jason", "http://reviews.default:9080/"), "reviews-v1 from 127.0.0.6")(); err != nil {
		t.Errorf("over IPv6 to the VIP as jason: %v", err)
	}
	if err := want(curl("http://["+l.ip6(12)+"]:9080/"), "reviews-v2 from 127.0.0.6")(); err != nil {
		t.Errorf("to the v2 pod's IPv6 address: %v", err)
	}
	tcpEcho := func(host, port string) (string, error) {
		script := fmt.Sprintf("exec 3<>/dev/tcp/%s/%s && echo world >&3 && read -t 3 line <&3 && echo \"$line\"", host, port)
		out, err := l.run(client, 1000, "bash", "-c", script)
		return strings.TrimSpace(out), err
	}
	for _, ip := range []string{l.ip(1), l.ip6(1)} {
		if out, err := tcpEcho(ip, "9000"); err != nil || out != "hello world" {
			t.Errorf("raw TCP to %s:9000 through the capture: %q %v", ip, out, err)
		}
	}
	// A TCP ServiceEntry host: its VIP from the DNS proxy, then its cluster.
	if out, err := tcpEcho("echo.example.com.", "9001"); err != nil || out != "mesh world" {
		t.Errorf("TCP to echo.example.com:9001 (ServiceEntry VIP): %q %v", out, err)
	}
	// The proxies' own ports are not captured inbound.
	if out, err := l.run(client, 1000, "curl", "-sS", "--max-time", "3", "-o", "/dev/null", "-w", "%{http_code}",
		"http://"+l.ip(12)+":15021/healthz/ready"); err != nil || out != "200" {
		t.Errorf("health port of the v2 sidecar: %q %v", out, err)
	}
	// An app container's postStart hook (holdApplicationUntilProxyStarts)
	// asks the proxy on localhost.
	if out, err := l.run(v1, 0, weftBin, "proxy-ready"); err != nil {
		t.Errorf("weft proxy-ready in the v1 pod: %v: %s", err, out)
	}
	// What curl did without a sidecar is what the client's proxy saw.
	if out, err := l.run(client, 0, "curl", "-sS", "--max-time", "3", "http://"+l.ip(13)+":15090/stats/prometheus"); err != nil ||
		!strings.Contains(out, `destination_version="v2"`) || !strings.Contains(out, `destination_version="v1"`) {
		t.Errorf("client sidecar stats (%v) lack requests to v1 and v2:\n%s", err, tail(out, 2000))
	}

	// loadBalancer PASSTHROUGH: the request goes to the address the client
	// dialled (here v1's pod IP), whatever the route's subset (v2) holds.
	toV1AsReviews := curl("-H", "Host: reviews:9080", "http://"+l.ip(11)+":9080/")
	if err := want(toV1AsReviews, "reviews-v2 from 127.0.0.6")(); err != nil {
		t.Errorf("Host reviews to v1's IP, balanced: %v", err)
	}
	passthrough := strings.Replace(yaml, "  host: reviews\n  subsets:", "  host: reviews\n  trafficPolicy: {loadBalancer: {simple: PASSTHROUGH}}\n  subsets:", 1)
	if passthrough == yaml {
		t.Fatal("the DestinationRule to change was not found")
	}
	if err := os.WriteFile(filepath.Join(cfgDir, "reviews.yaml"), []byte(passthrough), 0o644); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, want(toV1AsReviews, "reviews-v1 from 127.0.0.6"))
}
