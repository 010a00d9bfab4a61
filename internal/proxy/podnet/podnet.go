// Package podnet gives a standalone workload's app a network namespace of
// its own, as a pod has one: the app's ports are then reachable only
// through its sidecar, and the only way out of it is the sidecar's
// outbound capture port. The sidecar itself stays in the host's namespace
// (control plane, peers, health and metrics ports), binds the capture port
// inside the app's namespace and dials the app there. Creating a namespace
// needs CAP_SYS_ADMIN (root); only Linux has them.
package podnet

import (
	"context"
	"net"
)

// Dial opens a connection in the namespace with d (its timeout and local
// address).
func (n *Netns) Dial(ctx context.Context, d *net.Dialer, network, address string) (net.Conn, error) {
	var c net.Conn
	err := n.Do(func() error {
		var err error
		c, err = d.DialContext(ctx, network, address)
		return err
	})
	return c, err
}

// Listen listens in the namespace.
func (n *Netns) Listen(network, address string) (net.Listener, error) {
	var ln net.Listener
	err := n.Do(func() error {
		var err error
		ln, err = net.Listen(network, address)
		return err
	})
	return ln, err
}
