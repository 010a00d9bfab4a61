package dataplane

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"
)

// server is one bound listener.
type server struct {
	name string
	addr netip.AddrPort
	ln   net.Listener
	http *http.Server // nil for raw accept loops
	done chan struct{}
	d    *Dataplane
}

// bindListeners starts servers for new listeners and drains removed ones. Locked.
func (d *Dataplane) bindListeners(rt *runtime) error {
	want := map[string]netip.AddrPort{}
	for name, l := range rt.listeners {
		if !l.bind {
			continue
		}
		addr := l.addr
		if addr.Addr().IsUnspecified() {
			addr = netip.AddrPortFrom(d.opts.IP, addr.Port())
		}
		want[name] = addr
	}
	started := map[string]*server{}
	for name, addr := range want {
		if s, ok := d.servers[name]; ok && s.addr == addr {
			continue
		}
		s, err := d.listen(name, addr, rt.listeners[name])
		if err != nil {
			for _, s := range started {
				s.ln.Close()
			}
			return fmt.Errorf("listener %q: %w", name, err)
		}
		started[name] = s
	}
	for name, s := range d.servers {
		if addr, ok := want[name]; (ok && addr == s.addr) || name == meshServerName {
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

func (d *Dataplane) drain(s *server) {
	ctx, cancel := context.WithTimeout(context.Background(), d.opts.DrainTime)
	defer cancel()
	if err := s.shutdown(ctx); err != nil {
		d.log.Warn("listener drain ended early", "listener", s.name, "err", err)
	}
}

func (d *Dataplane) listen(name string, addr netip.AddrPort, l *rlistener) (*server, error) {
	ln, err := net.Listen("tcp", addr.String())
	if err != nil {
		return nil, err
	}
	s := &server{name: name, addr: addr, ln: ln, done: make(chan struct{}), d: d}
	switch {
	case l.origDst:
		s.http = d.newHTTPServer(http.HandlerFunc(d.capture))
	case l.proxyProto:
		// raw accept loop: PROXY header first.
	default:
		s.http = d.newHTTPServer(d.listenerHandler(name))
	}
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
		ErrorLog:          nil,
	}
}

func (s *server) serve() {
	defer close(s.done)
	if s.http != nil {
		if err := s.http.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.d.log.Error("listener stopped", "listener", s.name, "err", err)
		}
		return
	}
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		go s.d.inbound(s.name, c)
	}
}

func (s *server) shutdown(ctx context.Context) error {
	if s.http != nil {
		err := s.http.Shutdown(ctx)
		<-s.done
		return err
	}
	s.ln.Close()
	<-s.done
	return nil
}

// dstKey carries a connection's original destination into its requests.
type dstKey struct{}

// origin is where a tunnelled or inbound connection was going.
type origin struct {
	listener string
	dst      string // host:port
	port     uint16
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
	if oc, ok := c.(*originConn); ok {
		return context.WithValue(ctx, dstKey{}, oc.o)
	}
	return ctx
}

// listenerHandler serves HTTP for a bound listener (gateways).
func (d *Dataplane) listenerHandler(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rt := d.rt.Load()
		l := rt.listeners[name]
		if l == nil {
			d.fwd.direct(w, r, http.StatusServiceUnavailable, "NR", "")
			return
		}
		c := l.chain(l.addr.Port())
		if c == nil || !c.isHTTP() {
			d.fwd.direct(w, r, http.StatusNotFound, "NR", "")
			return
		}
		d.fwd.serve(w, r, rt, c, "")
	})
}

// meshServerName keys the mesh server among the bound listeners; it is not
// an xDS listener, so listener updates never drain it.
const meshServerName = "~mesh"

// meshServer serves HTTP on connections handed over from CONNECT tunnels and the inbound port.
type meshServer struct {
	once sync.Once
	ln   *chanListener
	srv  *http.Server
}

func (d *Dataplane) handOver(c *originConn) {
	d.mesh.once.Do(func() {
		d.mesh.ln = newChanListener(c.LocalAddr())
		d.mesh.srv = d.newHTTPServer(http.HandlerFunc(d.meshHTTP))
		d.mu.Lock()
		d.servers[meshServerName] = &server{name: meshServerName, ln: d.mesh.ln, http: d.mesh.srv, done: make(chan struct{}), d: d}
		s := d.servers[meshServerName]
		d.mu.Unlock()
		go s.serve()
	})
	if !d.mesh.ln.push(c) {
		c.Close()
	}
}

// meshHTTP routes a request from a tunnelled or inbound connection.
func (d *Dataplane) meshHTTP(w http.ResponseWriter, r *http.Request) {
	o, _ := r.Context().Value(dstKey{}).(origin)
	rt := d.rt.Load()
	l := rt.listeners[o.listener]
	if l == nil {
		d.fwd.direct(w, r, http.StatusNotFound, "NR", "")
		return
	}
	c := l.chain(o.port)
	if c == nil || !c.isHTTP() {
		d.fwd.direct(w, r, http.StatusNotFound, "NR", "")
		return
	}
	d.fwd.serve(w, r, rt, c, o.dst)
}

// capture serves the outbound capture port: absolute-form, origin-form and CONNECT.
func (d *Dataplane) capture(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodConnect {
		d.connect(w, r)
		return
	}
	dst := hostPort(r.Host, 80)
	rt := d.rt.Load()
	l, port := d.outboundListener(rt, dst)
	if l != nil {
		if c := l.chain(port); c != nil && c.isHTTP() {
			d.fwd.serve(w, r, rt, c, dst)
			return
		}
	}
	// No HTTP listener for this destination: pass it through as it is.
	d.fwd.passthrough(w, r, dst)
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
