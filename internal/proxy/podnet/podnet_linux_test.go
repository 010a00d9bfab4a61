package podnet

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// newNetns makes a namespace, or skips without the rights.
func newNetns(t *testing.T) *Netns {
	t.Helper()
	n, err := New()
	if errors.Is(err, syscall.EPERM) {
		t.Skipf("no rights for a network namespace: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func TestNetnsIsolatesTheApp(t *testing.T) {
	n := newNetns(t)
	const addr = "127.77.0.1:9080" // only this namespace has it bound
	ln, err := n.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("in the namespace"))
			c.Close()
		}
	}()
	d := &net.Dialer{Timeout: 5 * time.Second}
	t.Run("the host does not reach it", func(t *testing.T) {
		if c, err := d.Dial("tcp", addr); err == nil {
			c.Close()
			t.Fatalf("dialled %s from the host's namespace", addr)
		}
	})
	t.Run("a dial in the namespace does", func(t *testing.T) {
		c, err := n.Dial(context.Background(), d, "tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		b := make([]byte, 64)
		k, _ := c.Read(b)
		if got := string(b[:k]); got != "in the namespace" {
			t.Errorf("read %q", got)
		}
	})
	t.Run("a process started in it has only lo", func(t *testing.T) {
		var out strings.Builder
		cmd := exec.Command("cat", "/proc/net/dev")
		cmd.Stdout = &out
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := n.Do(cmd.Start); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Wait(); err != nil {
			t.Fatal(err)
		}
		var ifaces []string
		for _, l := range strings.Split(out.String(), "\n")[2:] {
			if name, _, ok := strings.Cut(strings.TrimSpace(l), ":"); ok {
				ifaces = append(ifaces, name)
			}
		}
		if len(ifaces) != 1 || ifaces[0] != "lo" {
			t.Errorf("interfaces %q, want only lo", ifaces)
		}
	})
	t.Run("every thread is back in the host's namespace", func(t *testing.T) {
		host, err := os.Readlink("/proc/self/ns/net")
		if err != nil {
			t.Fatal(err)
		}
		for range 20 {
			var inside string
			if err := n.Do(func() error { inside, err = os.Readlink("/proc/thread-self/ns/net"); return err }); err != nil {
				t.Fatal(err)
			}
			if inside == host {
				t.Fatalf("Do ran in the host's namespace %s", host)
			}
		}
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			t.Fatal(err)
		}
		for _, task := range tasks {
			if ns, err := os.Readlink("/proc/self/task/" + task.Name() + "/ns/net"); err == nil && ns != host {
				t.Errorf("thread %s is in %s, want the host's %s", task.Name(), ns, host)
			}
		}
	})
}
