//go:build !linux

package localpeer

import (
	"errors"
	"fmt"
	"net/netip"
)

// FindSocket would return the socket at the other end of a connection;
// only Linux can tell, elsewhere the guard refuses what it cannot identify.
func FindSocket(local, remote netip.AddrPort) (Socket, error) {
	return Socket{}, fmt.Errorf("finding the process behind %s: %w", remote, errors.ErrUnsupported)
}

// HoldsSocket would report whether process pid or a descendant holds
// socket inode; only Linux can tell.
func HoldsSocket(pid int, inode uint64) (bool, error) {
	return false, fmt.Errorf("reading the descriptors of process %d: %w", pid, errors.ErrUnsupported)
}
