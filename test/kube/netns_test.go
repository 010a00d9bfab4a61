package kube

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// podNet is a test's pods as network namespaces on a bridge of the host's
// namespace: pods get 10.A.B.N (the API server refuses loopback pod and
// endpoint addresses) and the host, where the control plane runs and the
// API server is, is 10.A.B.1.
type podNet struct {
	t      *testing.T
	id     string // unique per test, in names
	a, b   int
	bridge string
}

func (n *podNet) ip(i int) string { return fmt.Sprintf("10.%d.%d.%d", n.a, n.b, i) }

func sh(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}

// newPodNet makes the bridge; the test fails (it does not skip) without
// root or the tools, which .ci/run installs.
func newPodNet(t *testing.T) *podNet {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("the pods' network namespaces need root")
	}
	for _, tool := range []string{"ip", "iptables-restore", "curl", "setpriv"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("needs %s (Debian: apt-get install iproute2 iptables curl util-linux)", tool)
		}
	}
	var sfx [3]byte
	_, _ = rand.Read(sfx[:])
	a, _ := rand.Int(rand.Reader, big.NewInt(50))
	b, _ := rand.Int(rand.Reader, big.NewInt(250))
	n := &podNet{t: t, id: hex.EncodeToString(sfx[:]), a: 200 + int(a.Int64()), b: 1 + int(b.Int64())}
	n.bridge = "wkb" + n.id
	sh(t, "ip", "link", "add", n.bridge, "type", "bridge")
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", n.bridge).Run() })
	sh(t, "ip", "addr", "add", n.ip(1)+"/24", "dev", n.bridge)
	sh(t, "ip", "link", "set", n.bridge, "up")
	return n
}

// pod makes namespace NAME with address .i on the bridge and returns its name.
func (n *podNet) pod(name string, i int) string {
	ns := "wk-" + n.id + "-" + name
	sh(n.t, "ip", "netns", "add", ns)
	// Deleted after the processes in it (cleanups run in reverse).
	n.t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	host := fmt.Sprintf("wkv%s%d", n.id, i)
	sh(n.t, "ip", "link", "add", host, "type", "veth", "peer", "name", "eth0", "netns", ns)
	sh(n.t, "ip", "link", "set", host, "master", n.bridge, "up")
	sh(n.t, "ip", "-n", ns, "addr", "add", n.ip(i)+"/24", "dev", "eth0")
	sh(n.t, "ip", "-n", ns, "link", "set", "eth0", "up")
	sh(n.t, "ip", "-n", ns, "link", "set", "lo", "up")
	sh(n.t, "ip", "-n", ns, "route", "add", "default", "via", n.ip(1))
	return ns
}

// command is args run in namespace ns as uid (0: root).
func (n *podNet) command(ns string, uid int, env []string, args ...string) *exec.Cmd {
	argv := []string{"netns", "exec", ns}
	if uid != 0 {
		id := fmt.Sprint(uid)
		argv = append(argv, "setpriv", "--reuid", id, "--regid", id, "--clear-groups", "--")
	}
	cmd := exec.Command("ip", append(argv, args...)...)
	cmd.Env = append(os.Environ(), env...)
	return cmd
}

// run runs args in ns as uid and returns the output.
func (n *podNet) run(ns string, uid int, args ...string) (string, error) {
	out, err := n.command(ns, uid, nil, args...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}
