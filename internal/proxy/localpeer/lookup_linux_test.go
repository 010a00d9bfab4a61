package localpeer

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// pair returns both ends of a TCP connection over addr ("127.0.0.1:0").
func pair(t *testing.T, network, addr string) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Skipf("listen %s: %v", addr, err)
	}
	defer ln.Close()
	client, err = net.Dial(network, ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

func addrs(c net.Conn) (local, remote netip.AddrPort) {
	return c.LocalAddr().(*net.TCPAddr).AddrPort(), c.RemoteAddr().(*net.TCPAddr).AddrPort()
}

// inode is what /proc/self/fd says c's socket is.
func inode(t *testing.T, c net.Conn) uint64 {
	t.Helper()
	f, err := c.(*net.TCPConn).File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

func TestFindSocketNamesThePeer(t *testing.T) {
	for _, tc := range []struct{ network, addr string }{{"tcp4", "127.0.0.1:0"}, {"tcp6", "[::1]:0"}} {
		t.Run(tc.network, func(t *testing.T) {
			client, server := pair(t, tc.network, tc.addr)
			s, err := FindSocket(addrs(server))
			if err != nil {
				t.Fatalf("FindSocket: %v", err)
			}
			if want := inode(t, client); s.Inode != want {
				t.Errorf("inode %d, want the client's %d", s.Inode, want)
			}
			if s.UID != uint32(os.Getuid()) {
				t.Errorf("uid %d, want %d", s.UID, os.Getuid())
			}
			// From the client's side the peer is the accepted socket.
			s, err = FindSocket(addrs(client))
			if err != nil || s.Inode != inode(t, server) {
				t.Errorf("FindSocket from the client: %+v, %v; want inode %d", s, err, inode(t, server))
			}
		})
	}
}

func TestFindSocketHalfClosed(t *testing.T) {
	client, server := pair(t, "tcp4", "127.0.0.1:0")
	if err := client.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	server.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := server.Read(make([]byte, 1)); err == nil {
		t.Fatal("read data, want the client's EOF")
	}
	// The client is in FIN_WAIT2 now, still its process's socket.
	s, err := FindSocket(addrs(server))
	if err != nil || s.Inode != inode(t, client) {
		t.Fatalf("FindSocket of a half-closed client: %+v, %v; want inode %d", s, err, inode(t, client))
	}
	// Once closed (TIME_WAIT on the client's side), nobody holds it.
	local, remote := addrs(server)
	client.Close()
	server.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := FindSocket(local, remote)
		if errors.Is(err, ErrNotLocal) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("FindSocket of a closed connection: %v, want ErrNotLocal", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestFindSocketNotLocal(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	lnAddr := ln.Addr().(*net.TCPAddr).AddrPort()
	for _, tc := range []struct {
		name          string
		local, remote netip.AddrPort
	}{
		{"no such connection", netip.MustParseAddrPort("127.0.0.1:1"), netip.MustParseAddrPort("127.0.0.1:2")},
		// An exact lookup falls back to a listener on the peer's address:
		// a listening socket is nobody's end of this connection.
		{"a listener on the peer's address", netip.MustParseAddrPort("127.0.0.1:3"), lnAddr},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if s, err := FindSocket(tc.local, tc.remote); !errors.Is(err, ErrNotLocal) {
				t.Fatalf("FindSocket: %+v, %v; want ErrNotLocal", s, err)
			}
		})
	}
}

func TestHoldsSocket(t *testing.T) {
	client, _ := pair(t, "tcp4", "127.0.0.1:0")
	ino := inode(t, client)
	f, err := client.(*net.TCPConn).File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	start := func(fd *os.File, args ...string) int {
		cmd := exec.Command(args[0], args[1:]...)
		if fd != nil {
			cmd.ExtraFiles = []*os.File{fd}
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return cmd.Process.Pid
	}
	stranger := start(nil, "sleep", "30")
	holder := start(f, "sleep", "30")
	// A shell that hands the socket to its child and closes its own copy.
	parent := start(f, "sh", "-c", "sleep 30 & exec 3<&-; wait")
	deadline := time.Now().Add(10 * time.Second)
	for {
		own, _ := hasLink(parent, "socket:["+strconv.FormatUint(ino, 10)+"]")
		kids := children(parent)
		if !own && len(kids) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the shell still holds the socket or has no child")
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Run("children from every process's parent", func(t *testing.T) {
		kids, byParent := children(parent), childrenByParent(parent)
		slices.Sort(kids)
		slices.Sort(byParent)
		if len(kids) == 0 || !slices.Equal(kids, byParent) {
			t.Errorf("childrenByParent(%d) = %v, children = %v", parent, byParent, kids)
		}
	})
	for _, tc := range []struct {
		name string
		pid  int
		want bool
	}{
		{"this process", os.Getpid(), true},
		{"a process without it", stranger, false},
		{"a process given it", holder, true},
		{"a process whose child has it", parent, true},
		{"no such process", 1 << 30, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := HoldsSocket(tc.pid, ino)
			if err != nil || got != tc.want {
				t.Errorf("HoldsSocket(%d): %v, %v; want %v", tc.pid, got, err, tc.want)
			}
		})
	}
}
