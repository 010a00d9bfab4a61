package cli

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/weft-mesh/weft/internal/controlplane"
	"github.com/weft-mesh/weft/internal/controlplane/authz"
	"github.com/weft-mesh/weft/internal/controlplane/xdsserver"
)

// startTestControlPlane runs a control plane on loopback ports until test
// end and returns its API URL and the WEFT_HOME where it left its admin
// credentials.
func startTestControlPlane(t *testing.T) (url, home string) {
	t.Helper()
	home = t.TempDir()
	ready := make(chan net.Addr, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- controlplane.Run(ctx, controlplane.Options{XDSAddress: "127.0.0.1:0", HTTPAddress: "127.0.0.1:0",
			OTLPGRPCAddress: "off", OTLPHTTPAddress: "off", SecureXDSAddress: "off", ConsoleAddress: "off", CredentialsHome: home,
			Ready: func(_, h net.Addr) { ready <- h }})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("control plane: %v", err)
		}
	})
	select {
	case a := <-ready:
		return "http://" + a.String(), home
	case err := <-done:
		t.Fatalf("control plane: %v", err)
	}
	return "", ""
}

// runCLI runs weft with args against the control plane at cp, as the user
// whose WEFT_HOME is home.
func runCLI(t *testing.T, cp, home string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	env := &Env{Args: args, Stdout: &out, Stderr: &errb, Getenv: func(k string) string {
		switch k {
		case envControlPlane:
			return cp
		case authz.EnvHome:
			return home
		}
		return ""
	}}
	code = RunEnv(context.Background(), env)
	return out.String(), errb.String(), code
}

const cliVS = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
`

const cliDR = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: prod}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
`

func TestApplyGetDeleteCommands(t *testing.T) {
	cp, home := startTestControlPlane(t)
	dir := t.TempDir()
	for name, body := range map[string]string{"vs.yaml": cliVS, "dr.yml": cliDR, "notes.txt": "not config"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte(strings.Replace(cliVS, "host: reviews,", "", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args             []string
		code             int
		stdout, inStderr string
	}{
		{[]string{"apply", "-f", dir}, 0,
			"destinationrule.networking.istio.io/reviews created\nvirtualservice.networking.istio.io/reviews created\n", ""},
		{[]string{"apply", "-f", filepath.Join(dir, "vs.yaml")}, 0, "virtualservice.networking.istio.io/reviews unchanged\n", ""},
		{[]string{"apply", "-f", bad}, 1, "", "bad.yaml: VirtualService default/reviews: spec.http[0].route[0].destination.host"},
		{[]string{"apply"}, 1, "", "needs -f"},
		{[]string{"get", "vs"}, 0, "NAMESPACE   NAME      SUMMARY         SOURCE   VERSION\ndefault     reviews   hosts=reviews   api      2\n", ""},
		{[]string{"get", "dr", "reviews", "-n", "prod", "-o", "yaml"}, 0, "", ""},
		{[]string{"get", "dr"}, 0, "", "No resources found in default namespace."},
		{[]string{"get", "nosuchkind"}, 1, "", `unknown kind "nosuchkind"`},
		{[]string{"delete", "-f", filepath.Join(dir, "vs.yaml")}, 0, "virtualservice.networking.istio.io/reviews deleted\n", ""},
		{[]string{"delete", "-f", filepath.Join(dir, "vs.yaml")}, 1, "", "VirtualService default/reviews: not found"},
		{[]string{"proxy-status"}, 0, "NAME   CLUSTER   CDS   LDS   EDS   RDS   ISTIOD   VERSION   TYPE   WORKLOAD\n", ""},
	}
	for _, tt := range tests {
		out, errOut, code := runCLI(t, cp, home, tt.args...)
		if code != tt.code || (tt.stdout != "" && out != tt.stdout) || !strings.Contains(errOut, tt.inStderr) {
			t.Errorf("weft %s: code %d, stdout\n%s\nstderr\n%s\nwant code %d, stdout\n%s\nstderr containing %q",
				strings.Join(tt.args, " "), code, out, errOut, tt.code, tt.stdout, tt.inStderr)
		}
	}
	out, _, _ := runCLI(t, cp, home, "get", "dr", "reviews", "-n", "prod", "-o", "yaml")
	if !strings.Contains(out, "kind: DestinationRule") || !strings.Contains(out, "namespace: prod") {
		t.Errorf("get -o yaml = %q", out)
	}
}

// TestWritesNeedCredentials: the user who runs the control plane applies
// with no extra step; anyone else needs the admin credentials.
func TestWritesNeedCredentials(t *testing.T) {
	cp, home := startTestControlPlane(t)
	vs := filepath.Join(t.TempDir(), "vs.yaml")
	if err := os.WriteFile(vs, []byte(cliVS), 0o644); err != nil {
		t.Fatal(err)
	}
	creds := authz.LocalPath(home, cp)
	other := t.TempDir() // another user's WEFT_HOME
	tests := []struct {
		name, home string
		args       []string
		code       int
		inStderr   string
	}{
		{"another user", other, []string{"apply", "-f", vs}, 1, "apply mesh config needs a credential"},
		{"another user deletes", other, []string{"delete", "-f", vs}, 1, "needs a credential"},
		{"wrong token", home, []string{"apply", "-f", vs, "--token", "weft-admin.guess"}, 1, "not this control plane's admin token"},
		{"missing credentials file", other, []string{"apply", "-f", vs, "--credentials", filepath.Join(other, "nope.json")}, 1, "--credentials: reading credentials"},
		{"the credentials file", other, []string{"apply", "-f", vs, "--credentials", creds}, 0, ""},
		{"the user who runs it", home, []string{"apply", "-f", vs}, 0, ""},
		{"reads are open", other, []string{"get", "vs"}, 0, ""},
	}
	for _, tt := range tests {
		_, errOut, code := runCLI(t, cp, tt.home, tt.args...)
		if code != tt.code || !strings.Contains(errOut, tt.inStderr) {
			t.Errorf("%s: weft %s: code %d, stderr %q; want %d, %q", tt.name, strings.Join(tt.args, " "), code, errOut, tt.code, tt.inStderr)
		}
	}
}

func TestUnreachableControlPlane(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + lis.Addr().String()
	lis.Close()
	for _, args := range [][]string{{"get", "vs"}, {"proxy-status"}} {
		_, errOut, code := runCLI(t, url, "", args...)
		if code != 1 || !strings.Contains(errOut, "cannot reach the control plane at "+url) || !strings.Contains(errOut, "weft control-plane") {
			t.Errorf("weft %v: code %d, stderr %q", args, code, errOut)
		}
	}
}

func TestPrintProxyStatus(t *testing.T) {
	ps := []xdsserver.ProxyStatus{{
		Name: "reviews-v2-1", Workload: "reviews-v2", Namespace: "default", Version: "0.1.0", Type: "sidecar",
		Types: map[string]xdsserver.TypeStatus{
			xdsserver.ClusterType:  {Sent: "0123456789abcdef", Acked: "0123456789abcdef", Status: xdsserver.StatusSynced},
			xdsserver.ListenerType: {Sent: "b", Acked: "a", Nacked: "cannot bind", Status: xdsserver.StatusStale},
			xdsserver.EndpointType: {Sent: "c", Status: xdsserver.StatusStale},
			xdsserver.RouteType:    {Subscribed: true, Status: xdsserver.StatusNotSent},
		},
	}, {
		Name: "client-1", Namespace: "default", Version: "1.85.0", Type: xdsserver.TypeProxyless,
		Types: map[string]xdsserver.TypeStatus{
			xdsserver.ClusterType:  {Sent: "c", Acked: "c", Status: xdsserver.StatusSynced},
			xdsserver.ListenerType: {Sent: "l", Acked: "l", Status: xdsserver.StatusSynced},
			xdsserver.EndpointType: {Sent: "e", Acked: "e", Status: xdsserver.StatusSynced},
			xdsserver.RouteType:    {Sent: "r", Acked: "r", Status: xdsserver.StatusSynced},
		},
	}}
	var b bytes.Buffer
	if err := printProxyStatus(&b, ps, "weft-control-plane@127.0.0.1:15014"); err != nil {
		t.Fatal(err)
	}
	want := `NAME                   CLUSTER      CDS                 LDS              EDS          RDS          ISTIOD                               VERSION   TYPE        WORKLOAD
reviews-v2-1.default   Kubernetes   SYNCED (01234567)   STALE (NACKED)   STALE        NOT SENT     weft-control-plane@127.0.0.1:15014   0.1.0     sidecar     reviews-v2
client-1.default       Kubernetes   SYNCED (c)          SYNCED (l)       SYNCED (e)   SYNCED (r)   weft-control-plane@127.0.0.1:15014   1.85.0    proxyless   client-1
reviews-v2-1.default LDS NACK: cannot bind
`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestParseInterspersed(t *testing.T) {
	tests := []struct {
		args    []string
		pos, ns string
	}{
		{[]string{"vs", "reviews", "-n", "prod"}, "vs,reviews", "prod"},
		{[]string{"-n", "prod", "vs"}, "vs", "prod"},
		{[]string{"vs", "--", "-n"}, "vs,-n", "default"},
	}
	for _, tt := range tests {
		fs := newFlags(&Env{Stderr: &bytes.Buffer{}}, "get")
		ns := fs.String("n", "default", "")
		pos, err := parseInterspersed(fs, tt.args)
		if err != nil || strings.Join(pos, ",") != tt.pos || *ns != tt.ns {
			t.Errorf("%v: got %v %q %v, want %s %s", tt.args, pos, *ns, err, tt.pos, tt.ns)
		}
	}
}

// TestWebhookURLFlag: a webhook URL the API server would refuse, or one the
// injector does not serve, is an error before anything starts.
func TestWebhookURLFlag(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--webhook-url", "https://10.0.0.1:15017/inject"}, "needs --webhook-address"},
		{[]string{"--webhook-address", "127.0.0.1:0", "--webhook-url", "http://10.0.0.1:15017/inject"}, "want https"},
		{[]string{"--webhook-address", "127.0.0.1:0", "--webhook-url", "https://10.0.0.1:15017/mutate"}, `path "/mutate", want /inject`},
		{[]string{"--webhook-address", "127.0.0.1:0", "--webhook-url", "https://:15017/inject"}, "no host"},
		{[]string{"--webhook-address", "127.0.0.1:0", "--webhook-url", "https://10.0.0.1/inject?x=1"}, "query"},
	}
	for _, tt := range tests {
		_, errOut, code := runCLI(t, "", t.TempDir(), append([]string{"control-plane"}, tt.args...)...)
		if code == 0 || !strings.Contains(errOut, tt.want) {
			t.Errorf("weft control-plane %v: code %d, stderr %q, want %q", tt.args, code, errOut, tt.want)
		}
	}
}
