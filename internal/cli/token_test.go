package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/weft-mesh/weft/internal/controlplane/token"
)

func TestTokenCreate(t *testing.T) {
	url, home := startTestControlPlane(t)
	stdout, stderr, code := runCLI(t, url, home, "token", "create", "--namespace", "default",
		"--service-account", "bookinfo-reviews", "--ttl", "1h")
	if code != 0 || !strings.HasPrefix(stdout, "weft.v1.") || !strings.Contains(stderr, "default/bookinfo-reviews") {
		t.Fatalf("token create via the API: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	// Another user (another WEFT_HOME), without the admin credentials: refused.
	if stdout, stderr, code := runCLI(t, url, t.TempDir(), "token", "create", "--service-account", "bookinfo-reviews"); code == 0 ||
		stdout != "" || !strings.Contains(stderr, "needs a credential") {
		t.Errorf("token create without the admin credentials: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	var out, errb bytes.Buffer

	dir := t.TempDir()
	out.Reset()
	errb.Reset()
	if code := Run(context.Background(), []string{"token", "create", "--service-account", "x", "--data-dir", dir}, &out, &errb); code == 0 ||
		!strings.Contains(errb.String(), "no join token key") {
		t.Errorf("--data-dir without a key: exit %d, stderr %q", code, errb.String())
	}
	iss, err := token.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if code := Run(context.Background(), []string{"token", "create", "--namespace", "ns1", "--service-account", "x", "--data-dir", dir}, &out, &errb); code != 0 {
		t.Fatalf("--data-dir: exit %d, stderr %q", code, errb.String())
	}
	if ns, sa, err := iss.Verify(strings.TrimSpace(out.String())); err != nil || ns != "ns1" || sa != "x" {
		t.Errorf("token from --data-dir: %q %q %v", ns, sa, err)
	}
	if code := Run(context.Background(), []string{"token", "create", "--control-plane", url}, &out, &errb); code == 0 {
		t.Error("without --service-account: want a failure")
	}
}
