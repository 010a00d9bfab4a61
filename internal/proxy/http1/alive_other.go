//go:build !linux

package http1

import "net"

// probe cannot check cheaply on this platform; a stale connection is
// caught when the request fails and is retried.
type probe struct{}

// init does nothing.
func (*probe) init(net.Conn) {}

// alive always reports true.
func (*probe) alive() bool { return true }
