// Package kubeapi runs a real kube-apiserver and etcd on loopback for tests,
// so that weft's Kubernetes code meets the API server it will meet on a
// cluster: admission, CRD schemas, RBAC, server-side apply, watches and
// their expiry, Leases.
//
// The kube-apiserver binary is built from the Go module proxy at the pinned
// [Version] by test/kubeapi/build.sh into $HOME/.cache/weft-kube/VERSION
// (or $WEFT_KUBE_DIR); etcd is Debian's etcd-server, found on PATH (or
// $WEFT_ETCD). .ci/run prepares both. A missing binary is an error that says
// which command makes it: the tests fail, they never skip.
//
// One server per test package, started in TestMain, keeps CI quick; each
// test works in its own namespace:
//
//	var api *kubeapi.Server
//
//	func TestMain(m *testing.M) { os.Exit(kubeapi.Main(m, &api)) }
//
//	func TestSomething(t *testing.T) {
//		ns := api.Namespace(t, "something", nil) // deleted when the test ends
//		admin := api.Clientset(t)                // system:masters
//		...
//	}
//
// api.Kubeconfig is the admin's kubeconfig file, for a weft process
// (`weft install --kubeconfig`); api.Config is its rest.Config.
//
// Other users, for RBAC tests: [Server.UserConfig] returns a rest.Config
// with a client certificate for a user name and groups (bind it with a
// RoleBinding whose subject is {kind: User, name: NAME}); [Server.ServiceAccountConfig]
// creates a ServiceAccount and returns a rest.Config with a token the
// TokenRequest API issued for it (subject {kind: ServiceAccount}). Neither
// may do anything until a Role or ClusterRole is bound to it. Both have a
// kubeconfig file variant (UserKubeconfig, ServiceAccountKubeconfig) for
// processes.
//
// The cluster has no kubelet, scheduler or controller-manager: pods stay
// Pending, Deployments get no ReplicaSets, a namespace gets no default
// ServiceAccount and a Service no EndpointSlices. A test creates what those
// controllers would ([Server.Namespace] creates the default ServiceAccount).
// The API server refuses loopback addresses in EndpointSlices and pod IPs:
// use addresses of network namespaces the test makes.
package kubeapi

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Version is the kube-apiserver version the tests run against; build.sh
// builds the same one.
const Version = "v1.37.2"

// BuildCommand is what makes the kube-apiserver binary, from the
// repository's root.
const BuildCommand = "bash test/kubeapi/build.sh"

// ServiceCIDR is the cluster's Service IP range: ClusterIPs come from it.
const ServiceCIDR = "10.96.0.0/16"

// Server is a running kube-apiserver with its own etcd, certificates and
// data directory. Its methods are safe for concurrent use.
type Server struct {
	// Config is the admin's client config (user weft-admin, group
	// system:masters).
	Config *rest.Config
	// Kubeconfig is the path of the admin's kubeconfig file.
	Kubeconfig string
	// IP is the loopback address both servers listen on.
	IP string

	dir        string
	pki        *pki
	etcdURL    string
	secure     int // the API server's port
	apiserverB string

	mu        sync.Mutex
	etcd      *process
	apiserver *process
}

// APIServerBinary returns the path of the kube-apiserver binary the tests
// use: $WEFT_KUBE_APISERVER, else kube-apiserver in $WEFT_KUBE_DIR, else in
// $HOME/.cache/weft-kube/VERSION.
func APIServerBinary() string {
	if p := os.Getenv("WEFT_KUBE_APISERVER"); p != "" {
		return p
	}
	dir := os.Getenv("WEFT_KUBE_DIR")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			home = os.TempDir()
		}
		dir = filepath.Join(home, ".cache", "weft-kube", Version)
	}
	return filepath.Join(dir, "kube-apiserver")
}

// etcdBinary returns the etcd to run: $WEFT_ETCD, else etcd on PATH.
func etcdBinary() (string, error) {
	if p := os.Getenv("WEFT_ETCD"); p != "" {
		return p, nil
	}
	p, err := exec.LookPath("etcd")
	if err != nil {
		return "", fmt.Errorf("etcd not found on PATH (install Debian's etcd-server: apt-get install etcd-server, or set $WEFT_ETCD)")
	}
	return p, nil
}

// Start runs etcd and kube-apiserver in a fresh directory under dir (a
// temporary one when empty) and waits until the API server is ready. Stop
// ends them.
func Start(ctx context.Context, dir string) (*Server, error) {
	bin := APIServerBinary()
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("kube-apiserver %s not found at %s: build it with `%s` from the repository's root (.ci/run does)", Version, bin, BuildCommand)
	}
	etcdBin, err := etcdBinary()
	if err != nil {
		return nil, err
	}
	if dir, err = os.MkdirTemp(dir, "weft-kubeapi-"); err != nil {
		return nil, fmt.Errorf("kube-apiserver's directory: %w", err)
	}
	s := &Server{dir: dir, apiserverB: bin}
	ip, ports, err := loopbackPorts(3)
	if err != nil {
		return nil, err
	}
	s.IP, s.secure = ip, ports[2]
	if s.pki, err = newPKI(dir, ip); err != nil {
		return nil, err
	}
	s.etcdURL = fmt.Sprintf("http://%s:%d", ip, ports[0])
	peer := fmt.Sprintf("http://%s:%d", ip, ports[1])
	s.etcd, err = startProcess(filepath.Join(dir, "etcd.log"), etcdBin,
		"--name", "weft-test", "--data-dir", filepath.Join(dir, "etcd"),
		"--listen-client-urls", s.etcdURL, "--advertise-client-urls", s.etcdURL,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "weft-test="+peer, "--logger", "zap", "--log-level", "warn")
	if err != nil {
		s.Stop()
		return nil, err
	}
	if err := s.startAPIServer(ctx); err != nil {
		s.Stop()
		return nil, err
	}
	s.Config = s.pki.clientConfig(s.host(), "weft-admin", "system:masters")
	if s.Kubeconfig, err = s.writeKubeconfig("admin", s.Config); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

func (s *Server) host() string { return fmt.Sprintf("https://%s:%d", s.IP, s.secure) }

// startAPIServer starts kube-apiserver and waits for its /readyz.
func (s *Server) startAPIServer(ctx context.Context) error {
	proc, err := s.runAPIServer(ctx, s.secure, "kube-apiserver.log")
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.apiserver = proc
	s.mu.Unlock()
	return nil
}

// runAPIServer starts a kube-apiserver on port of s.IP, with s's etcd and
// keys, and waits until it is ready.
func (s *Server) runAPIServer(ctx context.Context, port int, logName string) (*process, error) {
	p := s.pki
	args := []string{
		"--etcd-servers", s.etcdURL,
		"--bind-address", s.IP, "--advertise-address", s.IP, "--secure-port", fmt.Sprint(port),
		// The default reconciler wants the kubernetes Service's endpoint
		// to be a non-loopback address; nothing here needs that Service.
		"--endpoint-reconciler-type", "none",
		"--tls-cert-file", p.file("apiserver.crt"), "--tls-private-key-file", p.file("apiserver.key"),
		"--client-ca-file", p.file("ca.crt"),
		"--service-account-key-file", p.file("sa.pub"), "--service-account-signing-key-file", p.file("sa.key"),
		"--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
		"--authorization-mode", "RBAC",
		"--service-cluster-ip-range", ServiceCIDR,
		"--allow-privileged",
		"--profiling=false",
		"--cert-dir", filepath.Join(s.dir, "apiserver-certs"),
	}
	proc, err := startProcess(filepath.Join(s.dir, logName), s.apiserverB, args...)
	if err != nil {
		return nil, err
	}
	if err := waitReady(ctx, s.pki.clientConfig(fmt.Sprintf("https://%s:%d", s.IP, port), "weft-admin", "system:masters"), proc); err != nil {
		proc.stop(10 * time.Second)
		return nil, err
	}
	return proc, nil
}

// waitReady polls /readyz until it answers ok, the process exits or a
// minute passes.
func waitReady(ctx context.Context, cfg *rest.Config, proc *process) error {
	cfg.Timeout = 5 * time.Second
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("kube-apiserver client: %w", err)
	}
	rc := cs.Discovery().RESTClient()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var last error
	for {
		body, err := rc.Get().AbsPath("/readyz").DoRaw(ctx)
		if err == nil && strings.TrimSpace(string(body)) == "ok" {
			return nil
		}
		last = err
		select {
		case <-proc.done:
			return fmt.Errorf("kube-apiserver exited (%v):\n%s", proc.err, proc.tail(3000))
		case <-ctx.Done():
			return fmt.Errorf("kube-apiserver not ready within a minute (last: %v):\n%s", last, proc.tail(3000))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Stop ends the API server and etcd and removes their data.
func (s *Server) Stop() {
	s.mu.Lock()
	a, e := s.apiserver, s.etcd
	s.mu.Unlock()
	if a != nil {
		a.stop(10 * time.Second)
	}
	if e != nil {
		e.stop(10 * time.Second)
	}
	_ = os.RemoveAll(s.dir)
}

// Logs returns the end of the API server's log (for a failed test).
func (s *Server) Logs(n int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.apiserver == nil {
		return ""
	}
	return s.apiserver.tail(n)
}

// loopbackPorts picks a random loopback address other than 127.0.0.1 (so
// parallel test packages do not meet) and n free ports on it.
func loopbackPorts(n int) (string, []int, error) {
	var lastErr error
	for try := 0; try < 20; try++ {
		ip, ports, err := loopbackPortsOn(randomLoopback(), n)
		if err == nil {
			return ip, ports, nil
		}
		lastErr = err
	}
	return "", nil, fmt.Errorf("no free loopback address for kube-apiserver: %w", lastErr)
}

// loopbackPortsOn returns n free ports of ip.
func loopbackPortsOn(ip string, n int) (string, []int, error) {
	var ports []int
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		if err != nil {
			return "", nil, fmt.Errorf("a free port on %s: %w", ip, err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ip, ports, nil
}

// process is etcd or kube-apiserver, in its own process group, killed with
// the test binary (Pdeathsig).
type process struct {
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

func startProcess(logFile, bin string, args ...string) (*process, error) {
	f, err := os.Create(logFile)
	if err != nil {
		return nil, fmt.Errorf("log of %s: %w", filepath.Base(bin), err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	p := &process{cmd: cmd, log: logFile, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		_ = f.Close()
		close(p.done)
	}()
	return p, nil
}

// stop sends SIGTERM, then after bound SIGKILL to the group, and waits.
func (p *process) stop(bound time.Duration) {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(bound):
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

func (p *process) tail(n int) string {
	b, err := os.ReadFile(p.log)
	if err != nil {
		return err.Error()
	}
	if len(b) > n {
		return "…" + string(b[len(b)-n:])
	}
	return string(b)
}
