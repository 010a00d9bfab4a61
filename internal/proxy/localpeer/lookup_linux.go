package localpeer

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Sizes and offsets of linux/inet_diag.h's structs; x/sys has none of them.
const (
	nlmsgHdrLen  = 16 // struct nlmsghdr
	sockIDLen    = 48 // struct inet_diag_sockid
	diagReqLen   = 4 + 4 + sockIDLen
	diagMsgLen   = 4 + sockIDLen + 5*4
	diagMsgUID   = 4 + sockIDLen + 3*4
	diagMsgInode = diagMsgUID + 4
	// TCP states (include/net/tcp_states.h) that are nobody's end of a
	// connection: a half-open one a listener holds, a closed one kept for
	// its timer, a listener.
	tcpSynRecv  = 3
	tcpTimeWait = 6
	tcpListen   = 10
)

// FindSocket returns the socket at the other end of a TCP connection
// accepted on local from remote: the one whose own address is remote and
// whose peer is local. It is one exact sock_diag query (what ss asks for
// a single socket), whatever the number of sockets on the host.
func FindSocket(local, remote netip.AddrPort) (Socket, error) {
	l := netip.AddrPortFrom(local.Addr().Unmap(), local.Port())
	r := netip.AddrPortFrom(remote.Addr().Unmap(), remote.Port())
	if l.Addr().Is4() != r.Addr().Is4() {
		return Socket{}, fmt.Errorf("%s and %s: mixed address families", local, remote)
	}
	if l.Addr().Is4() {
		s, err := diag(unix.AF_INET, r, l)
		if !errors.Is(err, ErrNotLocal) || !local.Addr().Is4In6() {
			return s, err
		}
		// An IPv6 socket may have connected to a v4-mapped address.
		l, r = netip.AddrPortFrom(netip.AddrFrom16(l.Addr().As16()), l.Port()), netip.AddrPortFrom(netip.AddrFrom16(r.Addr().As16()), r.Port())
	}
	return diag(unix.AF_INET6, r, l)
}

// diag asks the kernel for the established TCP socket from src to dst.
func diag(family uint8, src, dst netip.AddrPort) (Socket, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_INET_DIAG)
	if err != nil {
		return Socket{}, fmt.Errorf("sock_diag socket: %w", err)
	}
	defer unix.Close(fd)
	req := make([]byte, nlmsgHdrLen+diagReqLen)
	ne := binary.NativeEndian
	ne.PutUint32(req[0:], uint32(len(req)))
	ne.PutUint16(req[4:], unix.SOCK_DIAG_BY_FAMILY)
	ne.PutUint16(req[6:], unix.NLM_F_REQUEST)
	ne.PutUint32(req[8:], 1) // sequence
	b := req[nlmsgHdrLen:]
	b[0], b[1] = family, unix.IPPROTO_TCP
	ne.PutUint32(b[4:], ^uint32(0)) // every state; parseDiag judges
	putSockID(b[8:], src, dst)
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return Socket{}, fmt.Errorf("sock_diag request: %w", err)
	}
	buf := make([]byte, 4096)
	n, _, err := unix.Recvfrom(fd, buf, 0)
	if err != nil {
		return Socket{}, fmt.Errorf("sock_diag answer: %w", err)
	}
	return parseDiag(buf[:n], src, dst)
}

// putSockID writes a struct inet_diag_sockid: ports and addresses in
// network order, no interface, no cookie (INET_DIAG_NOCOOKIE).
func putSockID(b []byte, src, dst netip.AddrPort) {
	binary.BigEndian.PutUint16(b[0:], src.Port())
	binary.BigEndian.PutUint16(b[2:], dst.Port())
	copy(b[4:20], src.Addr().AsSlice())
	copy(b[20:36], dst.Addr().AsSlice())
	binary.NativeEndian.PutUint32(b[40:], ^uint32(0))
	binary.NativeEndian.PutUint32(b[44:], ^uint32(0))
}

// parseDiag reads the kernel's answer: one inet_diag_msg, or an error
// (ENOENT: no such socket). The answer must be the connected socket asked
// for, established or half-closed (a client may shut its side down right
// after its request): an exact lookup falls back to a listening socket on
// the address, and a closed peer's TIME_WAIT entry has no owner.
func parseDiag(b []byte, src, dst netip.AddrPort) (Socket, error) {
	ne := binary.NativeEndian
	if len(b) < nlmsgHdrLen+4 {
		return Socket{}, fmt.Errorf("sock_diag answer of %d bytes", len(b))
	}
	switch ne.Uint16(b[4:]) {
	case unix.NLMSG_ERROR:
		errno := -int32(ne.Uint32(b[nlmsgHdrLen:]))
		if unix.Errno(errno) == unix.ENOENT {
			return Socket{}, ErrNotLocal
		}
		return Socket{}, fmt.Errorf("sock_diag: %w", unix.Errno(errno))
	case unix.SOCK_DIAG_BY_FAMILY:
	default:
		return Socket{}, fmt.Errorf("sock_diag answer of type %d", ne.Uint16(b[4:]))
	}
	m := b[nlmsgHdrLen:]
	if len(m) < diagMsgLen {
		return Socket{}, fmt.Errorf("sock_diag message of %d bytes", len(m))
	}
	want := make([]byte, sockIDLen)
	putSockID(want, src, dst)
	s := Socket{Inode: uint64(ne.Uint32(m[diagMsgInode:])), UID: ne.Uint32(m[diagMsgUID:])}
	if st := m[1]; st == tcpSynRecv || st == tcpTimeWait || st == tcpListen || s.Inode == 0 || !bytes.Equal(m[4:4+36], want[:36]) {
		return Socket{}, ErrNotLocal
	}
	return s, nil
}

// HoldsSocket reports whether process pid or one of its descendants has
// socket inode open. The process itself is read first (the usual case),
// then its children, breadth first. A process that has exited holds
// nothing.
func HoldsSocket(pid int, inode uint64) (bool, error) {
	link := "socket:[" + strconv.FormatUint(inode, 10) + "]"
	seen := map[int]bool{}
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if seen[p] {
			continue
		}
		seen[p] = true
		ok, err := hasLink(p, link)
		if ok || (err != nil && p == pid) {
			return ok, err
		}
		queue = append(queue, children(p)...)
	}
	return false, nil
}

// hasLink reports whether a descriptor of process pid links to target.
// readlinkat on the open fd directory with one buffer keeps the cost per
// descriptor to one short syscall.
func hasLink(pid int, target string) (bool, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/fd")
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading the descriptors of process %d: %w", pid, err)
	}
	defer f.Close()
	dirfd := int(f.Fd())
	buf := make([]byte, 64)
	for {
		names, err := f.Readdirnames(256)
		for _, n := range names {
			if k, err := unix.Readlinkat(dirfd, n, buf); err == nil && string(buf[:k]) == target {
				return true, nil
			}
		}
		if err != nil {
			return false, nil // io.EOF, or the process went away
		}
	}
}

// children lists process pid's children, from every one of its threads
// (/proc/PID/task/TID/children), or, on a kernel without those files
// (CONFIG_PROC_CHILDREN off), from every process's parent.
func children(pid int) []int {
	base := "/proc/" + strconv.Itoa(pid) + "/task/"
	tids, err := os.ReadDir(base)
	if err != nil {
		return nil
	}
	var out []int
	for _, t := range tids {
		b, err := os.ReadFile(base + t.Name() + "/children")
		if errors.Is(err, fs.ErrNotExist) {
			if _, serr := os.Stat(base + t.Name()); serr == nil {
				return childrenByParent(pid)
			}
		}
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(f); err == nil {
				out = append(out, n)
			}
		}
	}
	return out
}

// childrenByParent lists process pid's children by reading every
// process's parent (/proc/N/stat): slower, for kernels without
// /proc/PID/task/TID/children.
func childrenByParent(pid int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// PID (COMM) STATE PPID ...; COMM may hold spaces and parentheses.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			out = append(out, n)
		}
	}
	return out
}
