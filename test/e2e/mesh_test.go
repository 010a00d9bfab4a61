package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/weft-mesh/weft/test/testutil"
)

// block is a test's own slice of loopback: 127.R.0.0/16.
type block struct{ r int }

func (b block) ip(x, y int) string { return fmt.Sprintf("127.%d.%d.%d", b.r, x, y) }

// Addresses inside a block, as the demo lays them out.
func (b block) ingress() string        { return b.ip(0, 1) + ":8080" }
func (b block) controlPlaneIP() string { return b.ip(0, 2) }
func (b block) api() string            { return "http://" + b.controlPlaneIP() + ":15014" }
func (b block) ipBase() string         { return b.ip(1, 0) }

var (
	blocksMu sync.Mutex
	blocks   = map[int]bool{}
)

// newBlock picks a free 127.R block: nothing of ours listens on its well-known ports.
func newBlock(t *testing.T) block {
	t.Helper()
	blocksMu.Lock()
	defer blocksMu.Unlock()
	for range 100 {
		r := 2 + rand.IntN(248)
		if blocks[r] {
			continue
		}
		b := block{r: r}
		if len(listening(b)) == 0 {
			blocks[r] = true
			return b
		}
	}
	t.Fatal("no free 127.R.0.0/16 block")
	return block{}
}

// listening lists the addresses of the block's well-known ports that accept connections.
func listening(b block) []string {
	var addrs []string
	ips := []string{b.ip(0, 1), b.ip(0, 2)}
	for i := 1; i <= 6; i++ {
		ips = append(ips, b.ip(1, i))
	}
	ports := []int{8080, 9080, 15000, 15001, 15006, 15010, 15012, 15014, 15020, 15021, 15090}
	for _, ip := range ips {
		for _, p := range ports {
			addr := net.JoinHostPort(ip, fmt.Sprint(p))
			c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
			if err == nil {
				c.Close()
				addrs = append(addrs, addr)
			}
		}
	}
	return addrs
}

// proc is a process the test started, in its own process group.
type proc struct {
	cmd  *exec.Cmd
	out  *lockedBuffer
	done chan struct{}
	err  error
}

// start runs weft with args in the background; t.Cleanup kills its whole group.
func start(t *testing.T, args ...string) *proc {
	t.Helper()
	return startEnv(t, nil, args...)
}

// startEnv is start with env added to the test's environment.
func startEnv(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(weftBin, args...)
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting weft %v: %v", args, err)
	}
	p := &proc{cmd: cmd, out: out, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.stop(syscall.SIGTERM, 15*time.Second)
		if t.Failed() {
			t.Logf("output of weft %s:\n%s", strings.Join(args, " "), tail(out.String(), 4000))
		}
	})
	return p
}

// joinToken creates a join token for ns/sa with `weft token create`
// against the control plane at api.
func joinToken(t *testing.T, api, ns, sa string) string {
	t.Helper()
	out, err := runWeft(api, "token", "create", "--namespace", ns, "--service-account", sa, "--ttl", "10m")
	if err != nil {
		t.Fatalf("weft token create: %v\n%s", err, out)
	}
	return strings.Fields(out)[0]
}

// startJoined starts a weft proxy command (args[0]: proxy, run or gateway)
// that joins the mesh as ns/sa with a fresh join token, given in its
// environment (never on its command line): it gets its certificate and
// config, and registers, over the control plane's authenticated xDS port.
func startJoined(t *testing.T, api, ns, sa string, args ...string) *proc {
	t.Helper()
	env := []string{"WEFT_JOIN_TOKEN=" + joinToken(t, api, ns, sa)}
	return startEnv(t, env, append([]string{args[0], "--service-account", sa}, args[1:]...)...)
}

// stop signals the process and waits; after the bound it kills the whole group.
func (p *proc) stop(sig syscall.Signal, bound time.Duration) (exited bool) {
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
		exited = true
	case <-time.After(bound):
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
	return exited
}

// mesh is a running demo in its own block.
type mesh struct {
	t       *testing.T
	b       block
	demo    *proc
	dataDir string
	client  *http.Client
}

// testIsTheApp is the flag that makes the test process the app of a
// sidecar started with weft proxy: its outbound capture port serves only
// the workload's own processes, and the test sends as that workload.
func testIsTheApp() []string {
	return []string{"--outbound-allow", "pid:" + strconv.Itoa(os.Getpid())}
}

// startDemo runs `weft demo --no-load [extra…]` in a fresh block and waits for the page.
func startDemo(t *testing.T, extra ...string) *mesh {
	t.Helper()
	return startDemoIn(t, newBlock(t), nil, extra...)
}

// startDemoEnv is startDemo with env added to the demo's environment.
func startDemoEnv(t *testing.T, env []string, extra ...string) *mesh {
	t.Helper()
	return startDemoIn(t, newBlock(t), env, extra...)
}

// startDemoIn is startDemo in block b, whose other addresses the test may
// use, with env added to the demo's environment.
func startDemoIn(t *testing.T, b block, env []string, extra ...string) *mesh {
	t.Helper()
	m := &mesh{t: t, b: b, dataDir: t.TempDir(), client: newClient()}
	m.demo = startEnv(t, env, append([]string{"demo", "--no-load", "--ip-base", b.ipBase(), "--ingress", b.ingress(),
		"--control-plane-ip", b.controlPlaneIP(), "--data-dir", m.dataDir}, extra...)...)
	m.waitPage(90 * time.Second)
	// Until the demo says it is running, its own start-up checks load the
	// page (and an exiting child fails its start): tests begin after that.
	m.waitRunning()
	return m
}

func newClient() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{
		Jar:       jar,
		Timeout:   15 * time.Second,
		Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 4},
	}
}

func (m *mesh) url(path string) string { return "http://" + m.b.ingress() + path }

// waitRunning waits until the demo says it is running: before that, a
// process that exits fails the demo's start; after, the demo restarts it.
func (m *mesh) waitRunning() {
	m.t.Helper()
	eventually(m.t, 60*time.Second, func() error {
		if !strings.Contains(m.demo.out.String(), "weft demo is running") {
			return fmt.Errorf("weft demo has not said it is running yet")
		}
		return nil
	})
}

// waitPage polls the product page through the ingress until it answers 200.
func (m *mesh) waitPage(bound time.Duration) {
	m.t.Helper()
	deadline := time.Now().Add(bound)
	var last string
	for time.Now().Before(deadline) {
		select {
		case <-m.demo.done:
			m.t.Fatalf("demo exited before the page answered: %v\n%s", m.demo.err, tail(m.demo.out.String(), 4000))
		default:
		}
		body, code, err := m.get(m.client, "/productpage")
		if err == nil && code == 200 && strings.Contains(body, "Reviews served by") {
			return
		}
		last = fmt.Sprintf("code %d err %v body %.200q", code, err, body)
		time.Sleep(200 * time.Millisecond)
	}
	m.t.Fatalf("product page not ready through %s within %s: %s", m.b.ingress(), bound, last)
}

func (m *mesh) get(c *http.Client, path string) (string, int, error) {
	resp, err := c.Get(m.url(path))
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return string(body), resp.StatusCode, err
}

var servedBy = regexp.MustCompile(`Reviews served by:\s*(?:<[^>]*>\s*)*([a-z0-9-]+)`)

// reviewsVersion fetches the page and returns the reviews version that served it ("v1"…).
func (m *mesh) reviewsVersion(c *http.Client) (string, error) {
	body, code, err := m.get(c, "/productpage")
	if err != nil {
		return "", err
	}
	if code != 200 {
		return "", fmt.Errorf("product page: HTTP %d: %.300s", code, body)
	}
	match := servedBy.FindStringSubmatch(body)
	if match == nil {
		return "", fmt.Errorf("product page names no reviews instance: %.500s", body)
	}
	parts := strings.Split(match[1], "-")
	if len(parts) < 2 || parts[0] != "reviews" {
		return "", fmt.Errorf("unexpected reviews instance %q", match[1])
	}
	return parts[1], nil
}

// count fetches n pages and counts the reviews versions that served them.
func (m *mesh) count(c *http.Client, n int) map[string]int {
	m.t.Helper()
	counts := map[string]int{}
	for range n {
		v, err := m.reviewsVersion(c)
		if err != nil {
			m.t.Fatal(err)
		}
		counts[v]++
	}
	return counts
}

// weft runs a CLI command against this mesh's control plane and returns its output.
func (m *mesh) weft(args ...string) (string, error) {
	return runWeft(m.b.api(), args...)
}

func runWeft(api string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, weftBin, args...)
	cmd.Env = append(os.Environ(), "WEFT_CONTROL_PLANE="+api)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// apply applies a file and fails the test if weft apply fails.
func (m *mesh) apply(path string) {
	m.t.Helper()
	if out, err := m.weft("apply", "-f", path); err != nil {
		m.t.Fatalf("weft apply -f %s: %v\n%s", path, err, out)
	}
}

// sample returns the path of a Bookinfo networking sample in the
// repository's samples/ (Istio's file names).
func sample(t *testing.T, name string) string {
	t.Helper()
	return sampleIn(t, "bookinfo/networking", name)
}

// sampleIn returns samples/DIR/NAME of the repository, the copy a user has;
// samples' own test checks it against Istio's.
func sampleIn(t *testing.T, dir, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "..", "samples", dir, name))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("sample %s/%s: %v", dir, name, err)
	}
	return p
}

const routeType = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"

// routesVersion returns the route config version a proxy has ACKed, as the
// control plane's API reports it.
func (m *mesh) routesVersion(proxy string) (string, error) {
	resp, err := newClient().Get(m.b.api() + "/api/v1/proxies")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var body struct {
		Proxies []struct {
			Name  string `json:"name"`
			Types map[string]struct {
				Acked  string `json:"acked"`
				Status string `json:"status"`
			} `json:"types"`
		} `json:"proxies"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return "", err
	}
	for _, p := range body.Proxies {
		if p.Name == proxy {
			rds := p.Types[routeType]
			if rds.Status != "SYNCED" {
				return "", fmt.Errorf("%s routes %s", proxy, rds.Status)
			}
			return rds.Acked, nil
		}
	}
	return "", fmt.Errorf("no proxy %s", proxy)
}

// applyRoutes applies a file that changes routing and waits until the
// product page's sidecar has ACKed the new routes, so the traffic that
// follows is routed by them alone.
func (m *mesh) applyRoutes(path string) {
	m.t.Helper()
	before, err := m.routesVersion("productpage-v1-1")
	if err != nil {
		m.t.Fatal(err)
	}
	m.apply(path)
	eventually(m.t, 5*time.Second, func() error {
		v, err := m.routesVersion("productpage-v1-1")
		if err != nil {
			return err
		}
		if v == before {
			return fmt.Errorf("productpage-v1-1 still on routes %s", v)
		}
		return nil
	})
}

// The helpers every process-level suite shares (package testutil).
type lockedBuffer = testutil.Buffer

var tail = testutil.Tail

// eventually polls fn until it returns nil or the bound passes.
func eventually(t *testing.T, bound time.Duration, fn func() error) {
	t.Helper()
	testutil.Eventually(t, bound, fn)
}
