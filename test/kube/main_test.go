package kube

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"

	"github.com/weft-mesh/weft/internal/kube/chart"
	"github.com/weft-mesh/weft/internal/kube/install"
	"github.com/weft-mesh/weft/manifests"
	"github.com/weft-mesh/weft/test/kubeapi"
	"github.com/weft-mesh/weft/test/testutil"
)

// api is the package's one API server; weftBin the weft binary built once.
var (
	api     *kubeapi.Server
	weftBin string
)

// echoEnv makes the test binary an HTTP app: it answers "NAME" on ADDR.
const echoEnv = "WEFT_KUBE_ECHO"

func TestMain(m *testing.M) {
	if spec := os.Getenv(echoEnv); spec != "" {
		addr, name, _ := strings.Cut(spec, " ")
		err := http.ListenAndServe(addr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintln(w, name)
		}))
		fmt.Fprintln(os.Stderr, "echo:", err)
		os.Exit(1)
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "weft-kube-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "kube:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	// The proxies run as UID 1337: they must reach the binary.
	if err := os.Chmod(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "kube:", err)
		return 1
	}
	// The control planes leave their admin credentials in WEFT_HOME (as a
	// user's ~/.weft): the package's own.
	if err := os.Setenv("WEFT_HOME", filepath.Join(dir, "home")); err != nil {
		fmt.Fprintln(os.Stderr, "kube:", err)
		return 1
	}
	// weft execs weft-proxy, found beside it, for proxy and iptables.
	weftBin = filepath.Join(dir, "weft")
	build := exec.Command("go", "build", "-o", dir+string(filepath.Separator), "../../cmd/weft", "../../cmd/weft-proxy")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "kube: building weft:", err)
		return 1
	}
	return kubeapi.Main(m, &api)
}

// weft runs weft to completion with the admin's kubeconfig in $KUBECONFIG.
func weft(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(weftBin, args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+api.Kubeconfig)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// mustWeft is weft that fails the test on an error.
func mustWeft(t *testing.T, args ...string) string {
	t.Helper()
	out, err := weft(t, args...)
	if err != nil {
		t.Fatalf("weft %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// proc is a long-lived process the test started, in its own group.
type proc struct {
	cmd  *exec.Cmd
	out  *lockedBuffer
	done chan struct{}
}

// startCmd starts cmd; t.Cleanup stops its group and shows its output if
// the test failed.
func startCmd(t *testing.T, cmd *exec.Cmd) *proc {
	t.Helper()
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %v: %v", cmd.Args, err)
	}
	p := &proc{cmd: cmd, out: out, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.kill(syscall.SIGTERM)
		if t.Failed() {
			t.Logf("output of %s:\n%s", strings.Join(cmd.Args, " "), tail(out.String(), 4000))
		}
	})
	return p
}

// kill signals the process, and after 10 s kills its whole group.
func (p *proc) kill(sig syscall.Signal) {
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// freeAddr returns a free port on ip.
func freeAddr(t *testing.T, ip string) string {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func dynamicClient(t *testing.T) dynamic.Interface {
	t.Helper()
	dc, err := dynamic.NewForConfig(api.Config)
	if err != nil {
		t.Fatal(err)
	}
	return dc
}

// applyCRDs applies the chart's CRDs and waits until they are established.
func applyCRDs() error {
	c, err := chart.Load(manifests.Chart, manifests.ChartDir)
	if err != nil {
		return err
	}
	docs, err := c.Render(chart.Options{Profile: "minimal", Release: chart.Release{Name: "weft", Namespace: "weft-system"}})
	if err != nil {
		return err
	}
	var crds []chart.Document
	for _, d := range docs {
		if d.Kind == "CustomResourceDefinition" {
			crds = append(crds, d)
		}
	}
	dc, err := dynamic.NewForConfig(api.Config)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return install.Apply(ctx, crds, install.Options{Client: dc})
}

// istioCRDs makes sure Istio's CRDs are installed (TestInstall purges them).
func istioCRDs(t *testing.T) {
	t.Helper()
	if err := applyCRDs(); err != nil {
		t.Fatalf("installing the CRDs: %v", err)
	}
}

// gvrOf maps the kinds tests apply to their resources.
var gvrOf = map[string]schema.GroupVersionResource{
	"VirtualService":  {Group: "networking.istio.io", Version: "v1", Resource: "virtualservices"},
	"DestinationRule": {Group: "networking.istio.io", Version: "v1", Resource: "destinationrules"},
	"Gateway":         {Group: "networking.istio.io", Version: "v1", Resource: "gateways"},
	"ServiceEntry":    {Group: "networking.istio.io", Version: "v1", Resource: "serviceentries"},
}

// applyYAML creates or updates (server-side apply) every document of y in
// namespace ns and returns the first error, with the object named.
func applyYAML(ctx context.Context, dc dynamic.Interface, ns string, y []byte) error {
	for _, doc := range bytes.Split(y, []byte("\n---")) {
		var obj unstructured.Unstructured
		if err := yaml.Unmarshal(doc, &obj.Object); err != nil {
			return fmt.Errorf("decoding: %w", err)
		}
		if len(obj.Object) == 0 {
			continue
		}
		gvr, ok := gvrOf[obj.GetKind()]
		if !ok {
			return fmt.Errorf("%s %s: kind not mapped in the test", obj.GetKind(), obj.GetName())
		}
		gvr.Version = strings.TrimPrefix(obj.GetAPIVersion(), gvr.Group+"/")
		b, err := obj.MarshalJSON()
		if err != nil {
			return err
		}
		in := ns
		if obj.GetNamespace() != "" { // as kubectl apply: the object's own namespace wins
			in = obj.GetNamespace()
		}
		force := true
		if _, err := dc.Resource(gvr).Namespace(in).Patch(ctx, obj.GetName(), "application/apply-patch+yaml", b,
			metav1.PatchOptions{FieldManager: "weft-test", Force: &force}); err != nil {
			return fmt.Errorf("%s %s/%s: %w", obj.GetKind(), in, obj.GetName(), err)
		}
	}
	return nil
}

// notFound is nil when err says the object is gone.
func notFound(what string, err error) error {
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err == nil {
		return fmt.Errorf("%s still exists", what)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// The helpers every process-level suite shares (package testutil).
type lockedBuffer = testutil.Buffer

var tail = testutil.Tail

// eventually polls fn until it returns nil or the bound passes.
func eventually(t *testing.T, bound time.Duration, fn func() error) {
	t.Helper()
	testutil.Eventually(t, bound, fn)
}
