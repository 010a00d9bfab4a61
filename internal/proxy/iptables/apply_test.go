package iptables

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestRunnerInNetns applies the rules twice and removes them in a network
// namespace of its own, with the real iptables-restore.
func TestRunnerInNetns(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a network namespace")
	}
	for _, tool := range []string{"ip", "iptables-restore", "iptables-save"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (Debian: apt-get install iptables iproute2)", tool)
		}
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	ns := "weft-ipt-" + hex.EncodeToString(b)
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r := Runner{Families: []Family{IPv4}, Wrap: []string{"ip", "netns", "exec", ns}}
	c := DefaultConfig()
	c.RedirectDNS, c.CaptureAllDNS = true, true
	c.ExcludeOutboundCIDRs = []string{"10.1.0.0/16"}
	for range 2 {
		if err := r.Apply(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	saved, err := r.Save(ctx, IPv4)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"-A PREROUTING -p tcp -j ISTIO_INBOUND",
		"-A OUTPUT -p tcp -j ISTIO_OUTPUT",
		"-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001",
		"-A ISTIO_OUTPUT -d 10.1.0.0/16 -j RETURN",
	} {
		if n := strings.Count(saved, want+"\n"); n != 1 {
			t.Errorf("%q appears %d times after two applies, want once:\n%s", want, n, saved)
		}
	}
	if err := r.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
	saved, err = r.Save(ctx, IPv4)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(saved, "ISTIO_") {
		t.Errorf("rules left after cleanup:\n%s", saved)
	}
}
