package localpeer

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"testing"
)

func TestGuardCheck(t *testing.T) {
	podIP := netip.MustParseAddr("127.1.2.3")
	local := netip.AddrPortFrom(podIP, 15001)
	fromLoopback := netip.MustParseAddrPort("127.0.0.1:40000")
	fromPod := netip.AddrPortFrom(podIP, 40001)
	fromAfar := netip.MustParseAddrPort("10.0.0.9:40002")
	const appInode, otherInode = 11, 22
	// The kernel as the tests see it: the app (pid 100) holds inode 11
	// through the connection from fromLoopback; fromPod is another
	// process's (inode 22, uid 1001); nothing local is behind fromAfar.
	find := func(_, remote netip.AddrPort) (Socket, error) {
		switch remote {
		case fromLoopback:
			return Socket{Inode: appInode, UID: 1000}, nil
		case fromPod:
			return Socket{Inode: otherInode, UID: 1001}, nil
		}
		return Socket{}, ErrNotLocal
	}
	holds := func(pid int, inode uint64) (bool, error) { return pid == 100 && inode == appInode, nil }
	broken := func(netip.AddrPort, netip.AddrPort) (Socket, error) { return Socket{}, errors.ErrUnsupported }
	for _, tc := range []struct {
		name   string
		guard  *Guard
		pids   []int
		remote netip.AddrPort
		allow  bool
	}{
		{"the app's connection", &Guard{}, []int{100}, fromLoopback, true},
		{"another process, even from the pod IP", &Guard{}, []int{100}, fromPod, false},
		{"another host", &Guard{}, []int{100}, fromAfar, false},
		{"no app yet", &Guard{}, nil, fromLoopback, false},
		{"a second process given", &Guard{}, []int{7, 100}, fromLoopback, true},
		{"an allowed uid", &Guard{UIDs: []uint32{1001}}, nil, fromPod, true},
		{"another uid", &Guard{UIDs: []uint32{1002}}, nil, fromPod, false},
		{"any", &Guard{Any: true, Find: broken}, nil, fromAfar, true},
		{"lookup fails: refused", &Guard{Find: broken}, []int{100}, fromLoopback, false},
		{"netns: loopback", &Guard{Netns: true, PodIP: podIP, Find: broken}, nil, fromLoopback, true},
		{"netns: the pod IP", &Guard{Netns: true, PodIP: podIP, Find: broken}, nil, fromPod, true},
		{"netns: another host", &Guard{Netns: true, PodIP: podIP}, nil, fromAfar, false},
		{"netns: another local address", &Guard{Netns: true, PodIP: podIP,
			Find: func(netip.AddrPort, netip.AddrPort) (Socket, error) { return Socket{Inode: 5}, nil }}, nil, fromAfar, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := tc.guard
			if g.Find == nil {
				g.Find = find
			}
			g.Holds = holds
			for _, p := range tc.pids {
				g.AddProcess(p)
			}
			err := g.Check(local, tc.remote)
			if tc.allow && err != nil {
				t.Errorf("Check(%s): %v, want allowed", tc.remote, err)
			}
			if !tc.allow && !errors.Is(err, ErrRefused) {
				t.Errorf("Check(%s): %v, want ErrRefused", tc.remote, err)
			}
		})
	}
}

func TestGuardEmpty(t *testing.T) {
	for _, tc := range []struct {
		name  string
		guard *Guard
		pid   int
		want  bool
	}{
		{"nothing", &Guard{}, 0, true},
		{"a process", &Guard{}, 42, false},
		{"a uid", &Guard{UIDs: []uint32{0}}, 0, false},
		{"any", &Guard{Any: true}, 0, false},
		{"netns", &Guard{Netns: true}, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.pid != 0 {
				tc.guard.AddProcess(tc.pid)
			}
			if got := tc.guard.Empty(); got != tc.want {
				t.Errorf("Empty() = %v, want %v", got, tc.want)
			}
		})
	}
}

// BenchmarkCheck is the per-connection cost with the kernel lookups: the
// accepted connection's peer is held by this process.
func BenchmarkCheck(b *testing.B) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		b.Fatal(err)
	}
	defer server.Close()
	g := &Guard{}
	g.AddProcess(os.Getpid())
	local, remote := server.LocalAddr().(*net.TCPAddr).AddrPort(), server.RemoteAddr().(*net.TCPAddr).AddrPort()
	for b.Loop() {
		if err := g.Check(local, remote); err != nil {
			b.Fatal(err)
		}
	}
}
