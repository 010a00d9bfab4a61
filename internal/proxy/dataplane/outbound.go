package dataplane

import (
	"bufio"
	"net"

	"github.com/weft-mesh/weft/internal/proxy/http1"
)

// connectH1 answers CONNECT host:port on the capture port and handles the
// tunnelled bytes as a new connection to host:port.
func (d *Dataplane) connectH1(s *server, conn net.Conn, br *bufio.Reader) {
	var req http1.Request
	if err := http1.ReadRequest(br, &req, http1.DefaultMaxHeaderBytes); err != nil || req.Method != "CONNECT" {
		conn.Close()
		return
	}
	dst := hostPort(req.Authority(), 443)
	if _, err := conn.Write([]byte("HTTP/1.1 200 OK\r\n\r\n")); err != nil {
		conn.Close()
		return
	}
	d.outbound(s, conn, br, dst)
}

// outbound serves a connection whose original destination is dst (a
// CONNECT tunnel or a connection iptables redirected): the filter chain of
// the listener for dst, HTTP/1.1 or h2c sniffed for HTTP chains, raw bytes
// for TCP ones, passed through (or refused) when no listener knows dst.
func (d *Dataplane) outbound(s *server, conn net.Conn, br *bufio.Reader, dst string) {
	rt := d.rt.Load()
	l, port := d.outboundListener(rt, dst)
	oc := &originConn{Conn: conn, br: br}
	var c *rchain
	if l != nil {
		c = l.chainForConn(port, conn, br)
	}
	switch {
	case c == nil:
		d.splice(s, oc, d.unknownDestination(rt), dst, false, defaultTCPIdleTimeout)
	case c.isHTTP():
		s.serveConn(conn, br, &origin{listener: l.name, dst: dst, port: port})
	default:
		d.splice(s, oc, rt.clusters[c.tcpTarget()], dst, false, c.tcpIdle)
	}
}
