package dataplane

import (
	"context"
	"net"
	"net/netip"
)

// dialDirect connects to addr without a tunnel: in the app's network
// namespace when the app has one and addr is the pod's own IP (the app),
// else from the host's.
func (d *Dataplane) dialDirect(ctx context.Context, dialer *net.Dialer, addr string) (net.Conn, error) {
	if pn := d.opts.PodNetwork; pn != nil {
		if ap, err := netip.ParseAddrPort(addr); err == nil && ap.Addr().Unmap() == d.opts.IP.Unmap() {
			return pn.Dial(ctx, dialer, "tcp", addr)
		}
	}
	return dialer.DialContext(ctx, "tcp", addr)
}
