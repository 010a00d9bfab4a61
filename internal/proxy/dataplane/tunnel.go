package dataplane

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weft-mesh/weft/internal/proxy/accesslog"
	"github.com/weft-mesh/weft/internal/proxy/stats"
)

// connect serves CONNECT host:port on the capture port: the tunnelled bytes
// are handled as a new connection to host:port.
func (d *Dataplane) connect(w http.ResponseWriter, r *http.Request, s *server) {
	dst := hostPort(r.Host, 443)
	hj, ok := w.(http.Hijacker)
	if !ok {
		http.Error(w, "CONNECT needs HTTP/1.1", http.StatusHTTPVersionNotSupported)
		return
	}
	conn, brw, err := hj.Hijack()
	if err != nil {
		return
	}
	if _, err := conn.Write([]byte("HTTP/1.1 200 OK\r\n\r\n")); err != nil {
		conn.Close()
		return
	}
	d.outbound(s, conn, brw.Reader, dst)
}

// inbound serves a connection on the inbound port: PROXY header, then the
// filter chain for its original destination port.
func (d *Dataplane) inbound(s *server, conn net.Conn) {
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReaderSize(conn, 4096)
	src, dst, err := readProxyHeader(br)
	if err != nil {
		d.log.Debug("inbound connection refused", "remote", conn.RemoteAddr().String(), "err", err)
		conn.Close()
		return
	}
	_ = conn.SetReadDeadline(time.Time{})
	d.inboundTo(s, conn, br, src, dst)
}

// inboundTo serves an inbound connection from src to the original
// destination dst (from a PROXY header or iptables): the filter chain for
// dst's port, mutual TLS when the chain asks for it, then HTTP or TCP.
func (d *Dataplane) inboundTo(s *server, conn net.Conn, br *bufio.Reader, src, dst netip.AddrPort) {
	listener := s.name
	rt := d.rt.Load()
	l := rt.listeners[listener]
	var c *rchain
	if l != nil {
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		first, err := br.Peek(1)
		_ = conn.SetReadDeadline(time.Time{})
		if err != nil {
			conn.Close()
			return
		}
		c = l.inboundChain(dst.Port(), first[0] == 0x16, "")
		if c == nil && l.httpInspector { // only chains for an application protocol
			c = l.inboundChain(dst.Port(), first[0] == 0x16, appHTTP1)
		}
	}
	o := origin{listener: listener, dst: dst.String(), port: dst.Port(), src: src.Addr()}
	if c != nil && c.mtls {
		if d.opts.Certs == nil {
			d.log.Warn("inbound mTLS chain but the proxy has no certificate", "port", dst.Port())
			conn.Close()
			return
		}
		tc, tbr, peer, err := d.acceptMTLS(conn, br)
		if err != nil {
			d.log.Debug("inbound mTLS handshake refused", "remote", conn.RemoteAddr().String(), "err", err)
			conn.Close()
			return
		}
		conn, br, o.principal, o.mtls = tc, tbr, peer.String(), true
		if mc, ok := tc.(*meshConn); ok {
			o.sni = mc.tls.ConnectionState().ServerName
		}
	}
	if c != nil && l.httpInspector {
		// The application protocol is in the (decrypted) first bytes:
		// an HTTP chain for HTTP, else the port's TCP chain.
		c = l.inboundChain(dst.Port(), o.mtls, sniffApp(conn, br))
	}
	oc := &originConn{Conn: conn, br: br, o: o}
	switch {
	case c == nil:
		d.log.Debug("no inbound filter chain (plaintext to a STRICT port?)", "port", dst.Port())
		conn.Close()
	case c.isHTTP():
		s.serveConn(conn, br, &o)
	case len(c.netRBAC) > 0 && !authorize(c.netRBAC, &rbacCtx{port: dst.Port(), principal: o.principal, source: o.src}):
		// Envoy's network RBAC closes a connection its policies deny.
		d.log.Debug("inbound connection denied by RBAC", "port", dst.Port(), "source", o.src.String(), "principal", o.principal)
		conn.Close()
	default:
		d.splice(s, oc, rt.clusters[c.tcpTarget()], dst.String(), true, c.tcpIdle)
	}
}

// splice proxies raw bytes between conn and an endpoint of cl (or dst itself
// when cl is nil or an original-destination cluster). inbound says the
// connection came in on the inbound listener (reported as the destination).
// The connection is s's: draining s lets it finish, up to the drain time.
func (d *Dataplane) splice(s *server, conn net.Conn, cl *rcluster, dst string, inbound bool, idle time.Duration) {
	defer conn.Close()
	sp := s.trackTCP(conn)
	if sp == nil { // s is draining: no new connection
		return
	}
	defer s.untrackTCP(sp)
	start := time.Now()
	o := observation{proto: stats.TCP, inbound: inbound, cl: cl, authority: dst, upstream: dst}
	if oc, ok := conn.(*originConn); ok && inbound {
		o.org, o.local, o.sni = &oc.o, oc.o.dst, oc.o.sni
	}
	ep := &rendpoint{addr: dst, stats: &endpointStats{}}
	if cl != nil && cl.kind != "original_dst" {
		o.cluster = cl.name
		ep = cl.pick()
		if ep == nil {
			d.tcpDone(&o, start, "UH", 0, 0)
			return
		}
		o.upstream = ep.addr
	} else {
		o.cluster = "PassthroughCluster"
		if cl == nil {
			ep = nil
		}
	}
	var up net.Conn
	var err error
	if ep != nil {
		up, err = d.fwd.dialEndpoint(context.Background(), ep)
	} else {
		up, err = d.dialDirect(context.Background(), &net.Dialer{Timeout: defaultConnectTimeout}, dst)
	}
	if err != nil {
		d.log.Debug("tcp upstream connect failed", "dst", dst, "err", err)
		d.tcpDone(&o, start, "UF", 0, 0)
		return
	}
	defer up.Close()
	if !s.spliceUp(sp, up) {
		return
	}
	var counters *stats.TCPCounters
	if d.tel.Stats != nil {
		o.edge = d.tcpEdge(&o, ep)
		counters = d.tel.Stats.TCP(o.edge)
		counters.Opened()
	}
	if ep != nil {
		ep.stats.active.Add(1)
		ep.stats.total.Add(1)
		defer ep.stats.active.Add(-1)
	}
	received, sent := pipe(conn, up, idle)
	counters.Bytes(received, sent)
	counters.Closed()
	if d.tel.AccessLog != nil {
		d.tcpDone(&o, start, "", received, sent)
	}
}

// tcpEdge is the metrics edge of a TCP connection.
func (d *Dataplane) tcpEdge(o *observation, ep *rendpoint) *stats.Edge {
	switch {
	case o.inbound && o.org != nil:
		return d.tel.inboundEdge("", *o.org) // the peer's principal and mTLS, as for HTTP
	case o.inbound:
		return d.tel.unknown
	case ep != nil && o.cl != nil && o.cl.kind != "original_dst":
		return d.tel.endpointEdge(o.cl, ep)
	}
	return d.tel.hostEdge(o.authority, o.cluster)
}

// tcpDone logs a TCP connection that ended; one that never reached its
// upstream is also counted, as Envoy counts it, as opened and closed.
func (d *Dataplane) tcpDone(o *observation, start time.Time, flags string, received, sent int64) {
	if !d.tel.on {
		return
	}
	if flags != "" && d.tel.Stats != nil {
		o.edge = d.tcpEdge(o, nil)
		c := d.tel.Stats.TCP(o.edge)
		c.Opened()
		c.Closed()
	}
	if d.tel.AccessLog != nil {
		d.tel.AccessLog.Log(&accesslog.Entry{StartTime: start, ResponseFlags: flags, BytesReceived: received, BytesSent: sent,
			DownstreamLocal: o.local, RequestedServer: o.sni,
			Duration: time.Since(start), UpstreamTime: -1, UpstreamHost: o.upstream, UpstreamCluster: o.cluster})
	}
}

// pipe copies both ways, half-closing each side when the other ends, and
// returns the bytes copied from a to b and from b to a.
// defaultTCPIdleTimeout is Envoy's tcp_proxy idle_timeout when none is set.
const defaultTCPIdleTimeout = time.Hour

// pipe copies both ways until both are done. With idle > 0, both
// connections are closed once no byte has gone either way for idle
// (Envoy's tcp_proxy idle_timeout).
func pipe(a, b net.Conn, idle time.Duration) (aToB, bToA int64) {
	var ra, rb io.Reader = a, b
	if idle > 0 {
		var last atomic.Int64
		last.Store(time.Now().UnixNano())
		ra, rb = &activityReader{a, &last}, &activityReader{b, &last}
		var timer *time.Timer
		var mu sync.Mutex
		mu.Lock()
		timer = time.AfterFunc(idle, func() {
			mu.Lock()
			defer mu.Unlock()
			if left := idle - time.Since(time.Unix(0, last.Load())); left > 0 {
				timer.Reset(left)
				return
			}
			a.Close()
			b.Close()
		})
		mu.Unlock()
		defer func() {
			mu.Lock()
			timer.Stop()
			mu.Unlock()
		}()
	}
	var wg sync.WaitGroup
	wg.Add(2)
	cp := func(dst net.Conn, src io.Reader, n *int64) {
		defer wg.Done()
		*n, _ = io.Copy(dst, src)
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		} else if oc, ok := dst.(*originConn); ok {
			if cw, ok := oc.Conn.(interface{ CloseWrite() error }); ok {
				_ = cw.CloseWrite()
			}
		}
	}
	go cp(b, ra, &aToB)
	go cp(a, rb, &bToA)
	wg.Wait()
	return aToB, bToA
}

// chanListener is a net.Listener fed with connections by push.
type chanListener struct {
	addr   net.Addr
	conns  chan net.Conn
	once   sync.Once
	closed chan struct{}
}

func newChanListener(addr net.Addr) *chanListener {
	return &chanListener{addr: addr, conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *chanListener) push(c net.Conn) bool {
	select {
	case l.conns <- c:
		return true
	case <-l.closed:
		return false
	}
}

// Accept returns the next pushed connection.
func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

// Close stops Accept.
func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

// Addr returns the address of the first connection's local side.
func (l *chanListener) Addr() net.Addr { return l.addr }

// unknownDestination is the cluster for TCP to a destination no listener
// knows: nil (pass it through) or BlackHoleCluster under REGISTRY_ONLY.
func (d *Dataplane) unknownDestination(rt *runtime) *rcluster {
	if rt.registryOnly {
		if cl := rt.clusters[blackHoleCluster]; cl != nil {
			return cl
		}
	}
	return nil
}

// activityReader records the time of every read that returns bytes.
type activityReader struct {
	r    io.Reader
	last *atomic.Int64
}

func (a *activityReader) Read(p []byte) (int, error) {
	n, err := a.r.Read(p)
	if n > 0 {
		a.last.Store(time.Now().UnixNano())
	}
	return n, err
}
