//go:build !linux

package dataplane

import (
	"errors"
	"net"
	"net/netip"
)

// originalDst needs Linux's netfilter; elsewhere no connection is redirected.
func originalDst(net.Conn) (netip.AddrPort, error) {
	return netip.AddrPort{}, errors.New("original destination: iptables capture needs Linux")
}
