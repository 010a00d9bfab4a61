package http1

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// RouteFunc decides where a request goes. It is called once per request on
// the connection's goroutine and may edit req (headers, SetPath). A
// connection may carry requests for different hosts (proxy absolute-form).
type RouteFunc func(req *Request) Decision

// Decision is the outcome of routing one request: an upstream to forward
// to when Dial is set, else a direct response (Status, Header, Body).
type Decision struct {
	// Key names the upstream connection pool entry, e.g. cluster|endpoint.
	Key string
	// Dial opens a new connection to the chosen upstream endpoint.
	Dial DialFunc
	// Authority, when set, replaces the Host sent upstream.
	Authority string
	// Timeout bounds the whole upstream exchange (0: none); expiry before
	// the response head gives 504 "upstream request timeout" (flag UT).
	Timeout time.Duration
	// ModifyResponse, when set, may edit the upstream response head before
	// it is sent downstream.
	ModifyResponse func(resp *Response)

	// Status is the status of a direct response (Dial == nil; 0: 404).
	Status int
	// Header holds extra fields of a direct response.
	Header Header
	// Body is the body of a direct response (sent as text/plain).
	Body string
	// Flags are Envoy response flags for a direct response, e.g. "NR", "UH".
	Flags string
	// Retry, when set, may send the request again after a failed attempt.
	Retry *Retry
	// AttemptCount sets x-envoy-attempt-count on each attempt sent upstream.
	AttemptCount bool
	// Mirror, when set, is given the request (and its body, when small
	// enough to keep) before it goes upstream, to shadow a copy elsewhere.
	// It must copy what it keeps.
	Mirror func(req *Request, body []byte)
	// MaxRequestsPerConn closes an upstream connection once it has carried
	// this many requests (0: no limit).
	MaxRequestsPerConn int
	// IdleTimeout closes the upstream connection once idle this long in the
	// pool (0: the pool's); MaxConnectionDuration closes it, once its
	// exchange ends, when it is older (0: no limit). Envoy's
	// common_http_protocol_options idle_timeout and max_connection_duration.
	IdleTimeout, MaxConnectionDuration time.Duration

	// Close ends the downstream connection after this exchange
	// (Connection: close), as Envoy does on a connection it drains.
	Close bool

	// Done, when set, is called once when the exchange ends, on the
	// connection's goroutine.
	Done func(Result)
}

// Result describes a finished exchange, for load balancing, stats and logs.
type Result struct {
	// Status is the status sent downstream (0 when none was sent).
	Status int
	// Flags are Envoy response flags: "UF" connect failure, "UC" upstream
	// connection termination, "UT" upstream timeout, "DC" downstream
	// connection termination, or the Decision's flags; "" when none.
	Flags string
	// Start is when the request head was read.
	Start time.Time
	// Duration is from Start until the last response byte was written.
	Duration time.Duration
	// BytesReceived counts request body bytes read from downstream.
	BytesReceived int64
	// BytesSent counts response body bytes written downstream.
	BytesSent int64
	// UpstreamErr is the upstream failure, if any.
	UpstreamErr error
	// UpstreamTime is from sending the request upstream until its response
	// head arrived (x-envoy-upstream-service-time); 0 when none did.
	UpstreamTime time.Duration
	// Retried is true when the request was re-sent on a fresh connection
	// after a reused one turned out to be closed.
	Retried bool
	// Attempts counts the attempts of a retried request (0 or 1: one).
	Attempts int
	// exhausted: the retry policy's limit was reached (flag URX).
	exhausted bool
}

// ServeOptions configures Serve. The zero value works (with a private
// pool); share one Pool between connections to reuse upstream connections.
type ServeOptions struct {
	// Pool supplies upstream connections.
	Pool *Pool
	// IdleTimeout closes a downstream connection waiting for its next
	// request longer than this (0: no limit).
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds request and response heads (0: 60 KiB).
	MaxHeaderBytes int
	// Draining, when it returns true, makes Serve answer with
	// "Connection: close" and return after the current exchange.
	Draining func() bool
	// ForwardedProto is set as x-forwarded-proto when absent (""; "http").
	ForwardedProto string
	// NoRequestID disables adding x-request-id to requests without one.
	NoRequestID bool
	// Logger receives debug logs; nil discards them.
	Logger *slog.Logger
}

// server is the per-connection state of Serve, pooled.
type server struct {
	ctx  context.Context
	opts *ServeOptions
	pool *Pool
	conn net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
	req  Request
	resp Response
	body Body
	// replay holds the request body of a request that may be retried.
	replay, replayBuf []byte
	// idleUntil is the read deadline armIdle set (zero: none).
	idleUntil time.Time
	log       *slog.Logger
	debug     bool
}

// maxDiscard bounds the request body read and dropped before a direct
// response; a larger body closes the connection instead.
const maxDiscard = 256 << 10

var serverPool = sync.Pool{New: func() any { return new(server) }}

// Serve runs the keep-alive loop of one downstream connection: read a
// request, route it, forward it or answer directly, and repeat until the
// client or upstream closes, Draining, an error, or ctx ends. br may hold
// bytes already read from conn (nil: a pooled reader is used). Serve
// closes conn before returning; it returns nil on a clean end.
func Serve(ctx context.Context, conn net.Conn, br *bufio.Reader, route RouteFunc, opts *ServeOptions) error {
	if opts == nil {
		opts = &ServeOptions{}
	}
	s := serverPool.Get().(*server)
	s.ctx, s.opts, s.conn, s.pool = ctx, opts, conn, opts.Pool
	if s.pool == nil {
		s.pool = NewPool(PoolOptions{})
		defer s.pool.Close()
	}
	s.log = opts.Logger
	s.debug = s.log != nil && s.log.Enabled(ctx, slog.LevelDebug)
	ownReader := br == nil
	if ownReader {
		br = getReader(conn)
	}
	s.br, s.bw = br, getWriter(conn)
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	err := s.loop(route)
	stop()
	conn.Close()
	putWriter(s.bw)
	if ownReader {
		putReader(br)
	}
	s.req.Reset()
	s.resp.Reset()
	*s = server{req: s.req, resp: s.resp, body: Body{scratch: s.body.scratch[:0]}}
	serverPool.Put(s)
	return err
}

// loop serves requests until the connection should end.
func (s *server) loop(route RouteFunc) error {
	for {
		if s.opts.IdleTimeout > 0 && s.br.Buffered() == 0 {
			s.armIdle()
		}
		err := ReadRequest(s.br, &s.req, s.opts.MaxHeaderBytes)
		if err != nil {
			return s.readError(err)
		}
		if s.readsDuringExchange() {
			s.disarmIdle()
		}
		if !s.exchange(route) {
			return nil
		}
	}
}

// armIdle bounds the wait for the next request with a read deadline.
// Moving a deadline is a runtime timer update, so one still at least 7/8
// of IdleTimeout away is kept: a connection is closed after between 7/8
// of IdleTimeout and all of it without a request, and a busy one moves
// its deadline once per IdleTimeout/8 rather than twice per request.
func (s *server) armIdle() {
	now := time.Now()
	if s.idleUntil.Sub(now) >= s.opts.IdleTimeout-s.opts.IdleTimeout/8 {
		return
	}
	s.idleUntil = now.Add(s.opts.IdleTimeout)
	s.conn.SetReadDeadline(s.idleUntil)
}

// disarmIdle clears the idle deadline before an exchange that reads from
// downstream beyond its head, which may take as long as it takes.
func (s *server) disarmIdle() {
	if !s.idleUntil.IsZero() {
		s.idleUntil = time.Time{}
		s.conn.SetReadDeadline(time.Time{})
	}
}

// readsDuringExchange reports whether the exchange of the request just
// read may read downstream: a body not yet all buffered, a body the
// client sends after 100 Continue, or a tunnel (Upgrade, CONNECT).
func (s *server) readsDuringExchange() bool {
	req := &s.req
	switch {
	case req.Upgrade != "" || req.Method == "CONNECT" || req.ExpectContinue || req.Chunked:
		return true
	case req.ContentLength > 0:
		return int64(s.br.Buffered()) < req.ContentLength
	}
	return false
}

// readError answers a request that could not be read and reports whether
// the end was clean.
func (s *server) readError(err error) error {
	var status int
	switch {
	case errors.Is(err, io.EOF), s.ctx.Err() != nil:
		return nil
	case errors.Is(err, ErrHeaderTooLarge):
		status = http.StatusRequestHeaderFieldsTooLarge
	case errors.Is(err, ErrMalformed):
		status = http.StatusBadRequest
	default:
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() && len(s.req.buf) == 0 {
			return nil // idle timeout between requests
		}
		return err
	}
	s.writeDirect(1, status, nil, "", true)
	s.bw.Flush()
	if s.debug {
		s.log.Debug("bad request", "component", "http1", "remote", s.conn.RemoteAddr(), "error", err)
	}
	return err
}

// exchange handles one request and reports whether to read another.
func (s *server) exchange(route RouteFunc) bool {
	req := &s.req
	res := Result{Start: time.Now()}
	d := route(req)
	closeDown := req.Close || d.Close || (s.opts.Draining != nil && s.opts.Draining())
	var keep bool
	if d.Dial == nil {
		keep = s.direct(&d, &res, closeDown)
	} else {
		keep = s.forward(&d, &res, closeDown)
	}
	res.Duration = time.Since(res.Start)
	if d.Done != nil {
		d.Done(res)
	}
	return keep
}

// direct answers a request with the Decision's direct response.
func (s *server) direct(d *Decision, res *Result, closeDown bool) bool {
	req := &s.req
	if req.HasBody() {
		if req.ExpectContinue {
			closeDown = true // the client waits; do not read its body
		} else {
			s.body.ResetRequest(s.br, req)
			n, err := io.CopyN(io.Discard, &s.body, maxDiscard)
			res.BytesReceived = n
			if err != nil && err != io.EOF {
				res.Flags = "DC"
				return false
			}
			closeDown = closeDown || !s.body.Done() // too large to skip
		}
	}
	status := d.Status
	if status == 0 {
		status = http.StatusNotFound
	}
	res.Status, res.Flags = status, d.Flags
	s.writeDirect(req.ProtoMinor, status, d.Header, d.Body, closeDown)
	if req.Method != "HEAD" {
		res.BytesSent = int64(len(d.Body))
	}
	if err := s.bw.Flush(); err != nil {
		res.Flags = "DC"
		return false
	}
	return !closeDown
}

// writeDirect writes a complete locally generated response.
func (s *server) writeDirect(minor, status int, h Header, body string, closeDown bool) {
	w := s.bw
	w.WriteString("HTTP/1.1 ")
	w.Write(strconv.AppendInt(w.AvailableBuffer(), int64(status), 10))
	w.WriteByte(' ')
	w.WriteString(http.StatusText(status))
	w.WriteString("\r\n")
	for _, f := range h {
		if !isHopByHop(f.Name) {
			writeField(w, f.Name, f.Value)
		}
	}
	if body != "" && !h.Has("content-type") {
		w.WriteString("Content-Type: text/plain\r\n")
	}
	writeFraming(w, int64(len(body)), false, true)
	if closeDown {
		w.WriteString("Connection: close\r\n")
	} else if minor == 0 {
		w.WriteString("Connection: keep-alive\r\n")
	}
	w.WriteString("\r\n")
	if s.req.Method != "HEAD" {
		w.WriteString(body)
	}
}
