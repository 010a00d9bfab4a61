package kubeauth

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestNamespaceEditor: jane, a service account bound to a Role that may
// edit networking.istio.io in namespace A, applies a VirtualService in A
// through weft's API and is refused (403, naming the permission) in B,
// where she may only read; without a token the write is 401; she may not
// mint join tokens; the console, after her login, lets its wizards write
// in A only. Nothing refused is stored.
func TestNamespaceEditor(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	nsA, nsB, cpNS := api.Namespace(t, "team-a", nil), api.Namespace(t, "team-b", nil), api.Namespace(t, "weft", nil)
	admin := api.Clientset(t)
	installCRDs(t)
	jane := api.ServiceAccountConfig(t, nsA, "jane")
	user := "system:serviceaccount:" + nsA + ":jane"
	bind := func(ns, name string, verbs ...string) {
		role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{"networking.istio.io"}, Resources: []string{"*"}, Verbs: verbs}}}
		if _, err := admin.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: name},
			Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "jane", Namespace: nsA}}}
		if _, err := admin.RbacV1().RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	bind(nsA, "istio-editor", "get", "list", "watch", "create", "update", "patch", "delete")
	bind(nsB, "istio-viewer", "get", "list", "watch")

	apiAddr, consoleAddr := freeAddr(t), freeAddr(t)
	cp := startWeft(t, "control-plane", "--kubernetes", "--kubeconfig", api.Kubeconfig, "--kube-namespace", cpNS,
		"--xds-address", "off", "--secure-xds-address", "off", "--otlp-grpc-address", "off", "--otlp-http-address", "off",
		"--http-address", apiAddr, "--console-address", consoleAddr)
	base := "http://" + apiAddr
	waitOK(t, cp, base+"/api/v1/proxies")

	vs := func(ns string) string {
		return writeFile(t, ns+".yaml", fmt.Sprintf("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews, namespace: %s}\n"+
			"spec:\n  hosts: [reviews]\n  http:\n  - route:\n    - destination: {host: reviews}\n", ns))
	}
	// Another user's home: the CLI finds no admin credentials.
	home := t.TempDir()
	tests := []struct {
		name string
		args []string
		ok   bool
		want string
	}{
		{"jane applies in A", []string{"apply", "--token", jane.BearerToken, "-f", vs(nsA)}, true, "virtualservice.networking.istio.io/reviews created"},
		{"jane applies in A again (update)", []string{"apply", "--token", jane.BearerToken, "-f", vs(nsA)}, true, "unchanged"},
		{"jane applies in B", []string{"apply", "--token", jane.BearerToken, "-f", vs(nsB)}, false,
			fmt.Sprintf("user %q cannot create virtualservices.networking.istio.io in namespace %q", user, nsB)},
		{"no token", []string{"apply", "-f", vs(nsA)}, false, "needs a credential"},
		{"a forged token", []string{"apply", "--token", "eyJhbGciOiJSUzI1NiJ9.forged.x", "-f", vs(nsA)}, false, "not authenticated"},
		{"jane mints a join token", []string{"token", "create", "--token", jane.BearerToken, "--namespace", nsA, "--service-account", "jane"}, false,
			fmt.Sprintf("user %q cannot create serviceaccounts/token \"jane\" in namespace %q", user, nsA)},
	}
	for _, tt := range tests {
		out, err := weft(home, base, tt.args...)
		if (err == nil) != tt.ok || !strings.Contains(out, tt.want) {
			t.Errorf("%s: weft %s: %v\n%s\nwant ok=%v and %q", tt.name, tt.args[0], err, out, tt.ok, tt.want)
		}
	}
	out, err := weft(home, base, "get", "vs", "-A")
	if err != nil || !strings.Contains(out, nsA) || strings.Contains(out, nsB) {
		t.Errorf("after the refusals the config is:\n%s (%v); want only %s's VirtualService", out, err, nsA)
	}

	// The console: a login with jane's token; the wizards may write in A only.
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil}}
	console := "http://" + consoleAddr
	resp, err := c.Post(console+"/api/auth/login", "application/json", strings.NewReader(`{"token":"`+jane.BearerToken+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || len(resp.Cookies()) != 1 {
		t.Fatalf("console login with jane's token: %d", resp.StatusCode)
	}
	cookie := resp.Cookies()[0]
	for ns, write := range map[string]bool{nsA: true, nsB: false} {
		req, _ := http.NewRequest("GET", console+"/api/auth?namespace="+ns, nil)
		req.AddCookie(cookie)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var info struct {
			User  string
			Write bool
		}
		err = json.NewDecoder(resp.Body).Decode(&info)
		resp.Body.Close()
		if err != nil || info.User != user || info.Write != write {
			t.Errorf("console /api/auth?namespace=%s: %+v, %v; want user %s, write %v", ns, info, err, user, write)
		}
	}
	req, _ := http.NewRequest("POST", console+"/api/v1/config?source=console", bytes.NewReader(must(os.ReadFile(vs(nsB)))))
	req.AddCookie(cookie)
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "cannot create virtualservices.networking.istio.io in namespace") {
		t.Errorf("console write in B as jane: %d %s, want 403", resp.StatusCode, body)
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// freeAddr returns a loopback address with a port nothing listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// proc is a weft process of the test.
type proc struct {
	cmd  *exec.Cmd
	out  *bytes.Buffer
	done chan struct{}
}

// startWeft runs weft in the background; the test's end stops it.
func startWeft(t *testing.T, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(weftBin, args...), out: &bytes.Buffer{}, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(15 * time.Second):
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
		if t.Failed() {
			t.Logf("weft %s:\n%s", strings.Join(args, " "), p.out.String())
		}
	})
	return p
}

// waitOK polls url until it answers 200.
func waitOK(t *testing.T, p *proc, url string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-p.done:
			t.Fatalf("weft exited:\n%s", p.out.String())
		default:
		}
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready: %v", url, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// weft runs the CLI as a user whose weft home is home, against api.
func weft(home, api string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, weftBin, args...)
	cmd.Env = append(os.Environ(), "WEFT_HOME="+home, "WEFT_CONTROL_PLANE="+api)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// writeFile writes a temporary file and returns its path.
func writeFile(t *testing.T, name, data string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
