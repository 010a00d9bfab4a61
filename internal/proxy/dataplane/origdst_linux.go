package dataplane

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"

	"golang.org/x/sys/unix"
)

// ip6tSOOriginalDst is IP6T_SO_ORIGINAL_DST (linux/netfilter_ipv6/ip6_tables.h).
const ip6tSOOriginalDst = 80

// originalDst returns where a connection that iptables redirected was
// going: SO_ORIGINAL_DST (IPv4) or IP6T_SO_ORIGINAL_DST (IPv6) of its
// socket. The kernel writes a sockaddr_in / sockaddr_in6; x/sys has no
// getter for those, so the ones of the same size (IPv6Mreq holds a
// sockaddr_in, IPv6MTUInfo starts with a sockaddr_in6) read them.
func originalDst(c net.Conn) (netip.AddrPort, error) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return netip.AddrPort{}, errors.New("not a TCP connection")
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return netip.AddrPort{}, err
	}
	local, _ := c.LocalAddr().(*net.TCPAddr)
	v4 := local != nil && local.IP.To4() != nil
	var dst netip.AddrPort
	var serr error
	err = raw.Control(func(fd uintptr) {
		if v4 {
			m, err := unix.GetsockoptIPv6Mreq(int(fd), unix.SOL_IP, unix.SO_ORIGINAL_DST)
			if err != nil {
				serr = err
				return
			}
			// sockaddr_in: family (2), port (2, big endian), address (4).
			sa := m.Multiaddr
			dst = netip.AddrPortFrom(netip.AddrFrom4([4]byte(sa[4:8])), binary.BigEndian.Uint16(sa[2:4]))
			return
		}
		info, err := unix.GetsockoptIPv6MTUInfo(int(fd), unix.SOL_IPV6, ip6tSOOriginalDst)
		if err != nil {
			serr = err
			return
		}
		// The port field holds network-order bytes read as a native uint16.
		var p [2]byte
		binary.NativeEndian.PutUint16(p[:], info.Addr.Port)
		dst = netip.AddrPortFrom(netip.AddrFrom16(info.Addr.Addr), binary.BigEndian.Uint16(p[:]))
	})
	if err == nil {
		err = serr
	}
	return dst, err
}
