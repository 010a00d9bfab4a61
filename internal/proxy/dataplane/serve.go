package dataplane

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/weft-mesh/weft/internal/proxy/http1"
)

// server is one bound listener. Its accept loop reads what must be read
// before HTTP (the PROXY header) and feeds connections to an HTTP server of
// its own, so draining a listener drains exactly its connections; CONNECT
// tunnels it accepted are fed back to it with their original destination.
type server struct {
	name string
	addr netip.AddrPort
	ln   net.Listener
	// proxyProto: connections start with a PROXY v2 header (virtualInbound).
	proxyProto bool
	// capture: the outbound capture listener (use_original_dst).
	capture bool
	feed    *chanListener
	http    *http.Server // h2c connections
	done    chan struct{}
	d       *Dataplane
	// HTTP/1 connections: served by http1.Serve under ctx.
	ctx      context.Context
	cancel   context.CancelFunc
	h1opts   http1.ServeOptions
	tracker  connTracker
	tcp      tcpTracker
	draining atomic.Bool
}

// bindListeners starts servers for new listeners and drains removed ones. Locked.
func (d *Dataplane) bindListeners(rt *runtime) error {
	want := map[string]netip.AddrPort{}
	for name, l := range rt.listeners {
		if !l.bind {
			continue
		}
		addr := l.addr
		if d.opts.Capture && (l.origDst || l.proxyProto) {
			addr = netip.AddrPortFrom(netip.IPv4Unspecified(), addr.Port()) // every address: see capture.go
		} else if addr.Addr().IsUnspecified() {
			addr = netip.AddrPortFrom(d.opts.IP, addr.Port())
		}
		want[name] = addr
	}
	started := map[string]*server{}
	for name, addr := range want {
		old, ok := d.servers[name]
		if ok && old.addr == addr && old.sameKind(rt.listeners[name]) {
			continue
		}
		if ok && old.addr == addr {
			old.ln.Close() // same address, another kind: free it for the new one
		}
		s, err := d.listen(name, addr, rt.listeners[name])
		if err != nil {
			for _, s := range started {
				s.ln.Close()
			}
			return fmt.Errorf("listener %q: binding %s: %w", name, addr, err)
		}
		started[name] = s
	}
	for name, s := range d.servers {
		_, replaced := started[name]
		if _, kept := want[name]; kept && !replaced {
			continue
		}
		delete(d.servers, name)
		go d.drain(s)
	}
	for name, s := range started {
		d.servers[name] = s
		go s.serve()
	}
	return nil
}

func (s *server) sameKind(l *rlistener) bool {
	return s.proxyProto == l.proxyProto && s.capture == l.origDst
}

func (d *Dataplane) drain(s *server) {
	ctx, cancel := context.WithTimeout(context.Background(), d.opts.DrainTime)
	defer cancel()
	if err := s.shutdown(ctx); err != nil {
		d.log.Warn("listener drain ended early", "listener", s.name, "err", err)
	}
}

func (d *Dataplane) listen(name string, addr netip.AddrPort, l *rlistener) (*server, error) {
	var ln net.Listener
	var err error
	switch {
	case d.opts.Capture && addr.Addr().IsUnspecified():
		ln, err = listenAll(addr.Port())
	case d.opts.PodNetwork != nil && l.origDst:
		ln, err = d.opts.PodNetwork.Listen("tcp", addr.String()) // where the app is
	default:
		ln, err = net.Listen("tcp", addr.String())
	}
	if err != nil {
		return nil, err
	}
	s := &server{name: name, addr: addr, ln: ln, proxyProto: l.proxyProto, capture: l.origDst,
		feed: newChanListener(ln.Addr()), done: make(chan struct{}), d: d}
	s.http = d.newHTTPServer(http.HandlerFunc(s.serveHTTP))
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.h1opts = http1.ServeOptions{Pool: d.pool, IdleTimeout: 5 * time.Minute, Draining: s.draining.Load, Logger: d.log}
	d.log.Info("listening", "listener", name, "address", addr.String())
	return s, nil
}

func (d *Dataplane) newHTTPServer(h http.Handler) *http.Server {
	p := new(http.Protocols)
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	return &http.Server{
		Handler:           h,
		Protocols:         p,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       5 * time.Minute,
		ConnContext:       connContext,
		ErrorLog:          slog.NewLogLogger(d.log.Handler(), slog.LevelDebug),
	}
}

func (s *server) serve() {
	defer close(s.done)
	go func() {
		if err := s.http.Serve(s.feed); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.d.log.Error("listener stopped", "listener", s.name, "err", err)
		}
	}()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		go s.accept(c)
	}
}

// hand gives a connection to the listener's HTTP server.
func (s *server) hand(c net.Conn) {
	if !s.feed.push(c) {
		c.Close()
	}
}

// shutdown stops accepting, then drains the HTTP server: idle keep-alive
// connections close, busy ones after their request, h2 ones get GOAWAY.
func (s *server) shutdown(ctx context.Context) error {
	s.ln.Close()
	<-s.done
	h1done, tcpDone := make(chan error, 1), make(chan error, 1)
	go func() { h1done <- s.drainH1(ctx) }()
	go func() { tcpDone <- s.drainTCP(ctx) }()
	err := s.http.Shutdown(ctx) // HTTP/2: GOAWAY, then in-flight streams finish
	s.feed.Close()
	if err != nil {
		s.http.Close()
	}
	err = errors.Join(err, <-h1done, <-tcpDone)
	s.cancel()
	return err
}

// dstKey carries a connection's original destination into its requests.
type dstKey struct{}

// origin is where a tunnelled or inbound connection was going.
type origin struct {
	listener string
	dst      string // host:port
	port     uint16
	// principal is the peer's SPIFFE ID when mutual TLS authenticated it.
	principal string
	mtls      bool
	// src is the peer's address from the PROXY header (inbound).
	src netip.Addr
	// sni is the server name the peer's TLS ClientHello asked for.
	sni string
}

// originConn is a connection with its original destination; reads go
// through br first (bytes already read while sniffing).
type originConn struct {
	net.Conn
	br *bufio.Reader
	o  origin
}

func (c *originConn) Read(p []byte) (int, error) { return c.br.Read(p) }

func connContext(ctx context.Context, c net.Conn) context.Context {
	switch oc := c.(type) {
	case *originConn:
		if oc.o.listener != "" {
			return context.WithValue(ctx, dstKey{}, oc.o)
		}
	case *bridgeConn:
		return context.WithValue(ctx, bridgeKey{}, oc.ep)
	}
	return ctx
}

// serveHTTP routes a request of this listener: tunnelled and inbound
// connections by their original destination, the capture port by the
// request's destination, other listeners by their own chain.
func (s *server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	d := s.d
	if o, ok := r.Context().Value(dstKey{}).(origin); ok {
		d.serveOrigin(w, r, o)
		return
	}
	if s.capture {
		d.capture(w, r, s)
		return
	}
	rt := d.rt.Load()
	l := rt.listeners[s.name]
	if l == nil {
		d.fwd.direct(w, r, http.StatusServiceUnavailable, "NR", "")
		return
	}
	c := l.chainFor(l.addr.Port(), "", appOf(r))
	if c == nil || !c.isHTTP() {
		d.fwd.direct(w, r, http.StatusNotFound, "NR", "")
		return
	}
	d.fwd.serve(w, r, rt, c, "")
}

// serveOrigin routes a request from a tunnelled or inbound connection.
func (d *Dataplane) serveOrigin(w http.ResponseWriter, r *http.Request, o origin) {
	rt := d.rt.Load()
	l := rt.listeners[o.listener]
	if l == nil {
		d.fwd.direct(w, r, http.StatusNotFound, "NR", "")
		return
	}
	c := l.chainFor(o.port, "", appOf(r))
	if c == nil || !c.isHTTP() {
		d.fwd.direct(w, r, http.StatusNotFound, "NR", "")
		return
	}
	d.fwd.serve(w, r, rt, c, o.dst)
}

// capture serves the outbound capture port: absolute-form, origin-form and CONNECT.
func (d *Dataplane) capture(w http.ResponseWriter, r *http.Request, s *server) {
	if r.Method == http.MethodConnect {
		d.connect(w, r, s)
		return
	}
	dst := hostPort(r.Host, 80)
	rt := d.rt.Load()
	l, port := d.outboundListener(rt, dst)
	if l != nil {
		if c := l.chainFor(port, "", appOf(r)); c != nil && c.isHTTP() {
			d.fwd.serve(w, r, rt, c, dst)
			return
		}
	}
	if rt.registryOnly {
		d.fwd.observed(w, r, nil, func(w http.ResponseWriter, o *observation) {
			o.cluster, o.authority = blackHoleCluster, r.Host
			o.edge = d.tel.hostEdge(r.Host, blackHoleCluster)
			d.fwd.direct(w, r, http.StatusBadGateway, "UH", "")
		})
		return
	}
	// No HTTP listener for this destination: pass it through as it is.
	d.fwd.observed(w, r, nil, func(w http.ResponseWriter, o *observation) {
		o.cluster, o.upstream, o.authority = "PassthroughCluster", dst, r.Host
		o.edge = d.tel.hostEdge(r.Host, "PassthroughCluster")
		d.fwd.passthrough(w, r, dst)
	})
}

// outboundListener finds the listener for an original destination: exact address, then port.
func (d *Dataplane) outboundListener(rt *runtime, dst string) (*rlistener, uint16) {
	host, p, _ := net.SplitHostPort(dst)
	n, _ := strconv.Atoi(p)
	port := uint16(n)
	if ip, err := netip.ParseAddr(host); err == nil {
		if l := rt.byAddr[netip.AddrPortFrom(ip, port)]; l != nil && !l.proxyProto {
			return l, port
		}
	}
	return rt.byPort[uint32(port)], port
}

func hostPort(host string, def int) string {
	if _, _, err := net.SplitHostPort(host); err == nil {
		return host
	}
	return net.JoinHostPort(host, strconv.Itoa(def))
}

// accept handles a new connection: PROXY-protocol inbound, raw TCP for a
// listener whose chain is a TCP proxy (a gateway's TCP server), else HTTP.
func (s *server) accept(c net.Conn) {
	if s.acceptCaptured(c) {
		return
	}
	if s.capture && !s.d.allowOutbound(c) {
		return
	}
	if s.proxyProto {
		s.d.inbound(s, c)
		return
	}
	if !s.capture {
		rt := s.d.rt.Load()
		if l := rt.listeners[s.name]; l != nil {
			var br *bufio.Reader
			if l.tlsInspector || l.httpInspector {
				br = bufio.NewReaderSize(c, 4096)
			}
			if ch := l.chainForConn(l.addr.Port(), c, br); ch != nil && !ch.isHTTP() {
				var conn net.Conn = c
				if br != nil {
					conn = &originConn{Conn: c, br: br}
				}
				s.d.splice(s, conn, rt.clusters[ch.tcpTarget()], "", false, ch.tcpIdle)
				return
			}
			if br != nil {
				s.serveConn(c, br, nil)
				return
			}
		}
	}
	s.serveConn(c, nil, nil)
}
