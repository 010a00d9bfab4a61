package dataplane

import (
	"bufio"
	"errors"
	"net"
	"net/netip"
	"sync"

	"github.com/weft-mesh/weft/internal/proxy/iptables"
)

// Transparent capture (Options.Capture): iptables redirects the pod's
// outbound TCP to the outbound capture port and its inbound TCP to the
// inbound capture port (see internal/proxy/iptables). Both ports listen on
// every address of the pod, since REDIRECT delivers locally generated
// connections to 127.0.0.1 / ::1 and inbound ones to the pod's address, and
// each connection's original destination comes from SO_ORIGINAL_DST. A
// connection made to the capture port itself (not redirected) is served as
// without capture: HTTP proxy requests on the outbound port, PROXY-header
// tunnels from peer sidecars on the inbound port.

// redirected returns the original destination of a connection iptables
// redirected to a capture port; false for one made to the port itself.
func redirected(c net.Conn) (netip.AddrPort, bool) {
	dst, err := originalDst(c)
	if err != nil {
		return dst, false
	}
	local, ok := c.LocalAddr().(*net.TCPAddr)
	if !ok {
		return dst, false
	}
	// Compare ports only: the proxy's own tunnel to its pod IP arrives
	// through loopback, redirected to 127.0.0.1 but addressed to the port.
	return netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port()), dst.Port() != uint16(local.Port)
}

// acceptCaptured serves a connection iptables redirected to a capture
// port and reports whether it was one.
func (s *server) acceptCaptured(c net.Conn) bool {
	if !s.d.opts.Capture || (!s.capture && !s.proxyProto) {
		return false
	}
	dst, ok := redirected(c)
	if !ok {
		return false
	}
	br := bufio.NewReaderSize(c, 4096)
	if s.proxyProto {
		src := netip.AddrPort{}
		if ra, ok := c.RemoteAddr().(*net.TCPAddr); ok {
			src = ra.AddrPort()
			src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
		}
		s.d.inboundTo(s, c, br, src, dst)
		return true
	}
	s.d.outbound(s, c, br, dst.String())
	return true
}

// passthroughSource is the local address for a connection to addr: when
// it is the pod's own IP under capture, the source the capture rules let
// through instead of redirecting it again (Istio's 127.0.0.6).
func (d *Dataplane) passthroughSource(addr netip.Addr) *net.TCPAddr {
	if !d.opts.Capture || addr.Unmap() != d.opts.IP.Unmap() {
		return nil
	}
	if addr.Unmap().Is4() {
		return net.TCPAddrFromAddrPort(netip.AddrPortFrom(iptables.InboundPassthroughSource4, 0))
	}
	return net.TCPAddrFromAddrPort(netip.AddrPortFrom(iptables.InboundPassthroughSource6, 0))
}

// listenAll listens on port on every IPv4 address and, when the host has
// IPv6, on every IPv6 address (two sockets, so each connection's original
// destination is read with its family's socket option).
func listenAll(port uint16) (net.Listener, error) {
	ln4, err := net.Listen("tcp4", netip.AddrPortFrom(netip.IPv4Unspecified(), port).String())
	if err != nil {
		return nil, err
	}
	lns := []net.Listener{ln4}
	if ln6, err := net.Listen("tcp6", netip.AddrPortFrom(netip.IPv6Unspecified(), port).String()); err == nil {
		lns = append(lns, ln6)
	}
	return newMultiListener(lns), nil
}

// multiListener accepts from several listeners.
type multiListener struct {
	lns   []net.Listener
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newMultiListener(lns []net.Listener) *multiListener {
	m := &multiListener{lns: lns, conns: make(chan net.Conn), done: make(chan struct{})}
	for _, ln := range lns {
		go m.run(ln)
	}
	return m
}

func (m *multiListener) run(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			m.Close()
			return
		}
		select {
		case m.conns <- c:
		case <-m.done:
			c.Close()
			return
		}
	}
}

// Accept returns the next connection of any listener.
func (m *multiListener) Accept() (net.Conn, error) {
	select {
	case c := <-m.conns:
		return c, nil
	case <-m.done:
		return nil, net.ErrClosed
	}
}

// Close closes every listener.
func (m *multiListener) Close() error {
	m.once.Do(func() {
		close(m.done)
		for _, ln := range m.lns {
			ln.Close()
		}
	})
	return nil
}

// Addr is the first listener's address.
func (m *multiListener) Addr() net.Addr { return m.lns[0].Addr() }
