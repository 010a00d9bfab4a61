package dnsproxy

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// Options configure a Server.
type Options struct {
	Resolver *Resolver
	// Upstreams receive the queries that are not for mesh hosts (port 53
	// of resolv.conf's name servers). None: such queries get SERVFAIL.
	Upstreams []netip.AddrPort
	// Timeout bounds each upstream exchange (default 2 s).
	Timeout time.Duration
	Logger  *slog.Logger
}

// Server serves DNS over UDP and TCP on the addresses it was started on.
type Server struct {
	opts  Options
	log   *slog.Logger
	pcs   []net.PacketConn
	lns   []net.Listener
	wg    sync.WaitGroup
	close sync.Once
}

// maxMessage is the largest DNS message (TCP length prefix).
const maxMessage = 65535

// Listen binds UDP and TCP on every address (host:port) and serves until Close.
func Listen(addrs []string, opts Options) (*Server, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = 2 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Resolver == nil {
		opts.Resolver = &Resolver{}
	}
	s := &Server{opts: opts, log: opts.Logger.With("component", "dnsproxy")}
	for _, a := range addrs {
		pc, ln, err := listenBoth(a)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("dns proxy: %w", err)
		}
		s.pcs, s.lns = append(s.pcs, pc), append(s.lns, ln)
	}
	for _, pc := range s.pcs {
		s.wg.Add(1)
		go s.serveUDP(pc)
	}
	for _, ln := range s.lns {
		s.wg.Add(1)
		go s.serveTCP(ln)
	}
	s.log.Info("dns proxy listening", "addresses", addrs, "upstreams", opts.Upstreams)
	return s, nil
}

// listenBoth binds UDP and TCP on the same address; port 0 gets one port
// free for both.
func listenBoth(addr string) (net.PacketConn, net.Listener, error) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, err
	}
	for try := 0; ; try++ {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, nil, fmt.Errorf("listening on udp %s: %w", addr, err)
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, ln, nil
		}
		pc.Close()
		if port != "0" || try == 20 {
			return nil, nil, fmt.Errorf("listening on tcp %s: %w", addr, err)
		}
	}
}

// UDPAddrs returns the bound UDP addresses (for tests that bind port 0).
func (s *Server) UDPAddrs() []net.Addr {
	var out []net.Addr
	for _, pc := range s.pcs {
		out = append(out, pc.LocalAddr())
	}
	return out
}

// TCPAddrs returns the bound TCP addresses.
func (s *Server) TCPAddrs() []net.Addr {
	var out []net.Addr
	for _, ln := range s.lns {
		out = append(out, ln.Addr())
	}
	return out
}

// Close stops serving and waits for the accept loops to end.
func (s *Server) Close() error {
	s.close.Do(func() {
		for _, pc := range s.pcs {
			pc.Close()
		}
		for _, ln := range s.lns {
			ln.Close()
		}
	})
	s.wg.Wait()
	return nil
}

func (s *Server) serveUDP(pc net.PacketConn) {
	defer s.wg.Done()
	buf := make([]byte, maxMessage)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				s.log.Warn("dns proxy: udp read", "err", err)
			}
			return
		}
		query := append([]byte(nil), buf[:n]...)
		go func() {
			if resp := s.handle(query, "udp"); resp != nil {
				_, _ = pc.WriteTo(resp, from)
			}
		}()
	}
}

func (s *Server) serveTCP(ln net.Listener) {
	defer s.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go s.serveTCPConn(c)
	}
}

// serveTCPConn answers length-prefixed queries until the client closes or idles.
func (s *Server) serveTCPConn(c net.Conn) {
	defer c.Close()
	for {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		query, err := readTCPMessage(c)
		if err != nil {
			return
		}
		resp := s.handle(query, "tcp")
		if resp == nil {
			return
		}
		if err := writeTCPMessage(c, resp); err != nil {
			return
		}
	}
}

func readTCPMessage(r io.Reader) ([]byte, error) {
	var n [2]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return nil, err
	}
	msg := make([]byte, binary.BigEndian.Uint16(n[:]))
	if _, err := io.ReadFull(r, msg); err != nil {
		return nil, err
	}
	return msg, nil
}

func writeTCPMessage(w io.Writer, msg []byte) error {
	if len(msg) > maxMessage {
		return fmt.Errorf("DNS message of %d bytes", len(msg))
	}
	out := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(msg)), uint16(len(msg)))
	_, err := w.Write(append(out, msg...))
	return err
}

// handle answers a query locally or through an upstream; nil drops it.
func (s *Server) handle(query []byte, network string) []byte {
	resp, err := s.opts.Resolver.Answer(query)
	switch {
	case err == nil:
		return resp
	case errors.Is(err, errMalformed):
		return failure(query, dnsmessage.RCodeFormatError)
	case !errors.Is(err, errNotLocal):
		s.log.Debug("dns proxy: building an answer", "err", err)
		return failure(query, dnsmessage.RCodeServerFailure)
	}
	for _, up := range s.opts.Upstreams {
		resp, err := s.forward(query, network, up)
		if err == nil {
			return resp
		}
		s.log.Debug("dns proxy: upstream failed", "upstream", up.String(), "err", err)
	}
	return failure(query, dnsmessage.RCodeServerFailure)
}

// forward sends a query to one upstream over network and returns its answer.
func (s *Server) forward(query []byte, network string, up netip.AddrPort) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.Timeout)
	defer cancel()
	c, err := (&net.Dialer{}).DialContext(ctx, network, up.String())
	if err != nil {
		return nil, err
	}
	defer c.Close()
	deadline, _ := ctx.Deadline()
	_ = c.SetDeadline(deadline)
	if network == "tcp" {
		if err := writeTCPMessage(c, query); err != nil {
			return nil, err
		}
		return readTCPMessage(c)
	}
	if _, err := c.Write(query); err != nil {
		return nil, err
	}
	buf := make([]byte, maxMessage)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return nil, err
		}
		// Only the answer to this query (same ID) counts.
		if n >= 2 && len(query) >= 2 && buf[0] == query[0] && buf[1] == query[1] {
			return append([]byte(nil), buf[:n]...), nil
		}
	}
}
