package dataplane

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/weft-mesh/weft/internal/proxy/http1"
	"github.com/weft-mesh/weft/internal/proxy/stats"
)

// h2Preface starts every HTTP/2 connection (prior knowledge h2c).
const h2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// h1Request adapts an http1 request for route matching.
type h1Request http1.Request

func (r *h1Request) method() string    { return r.Method }
func (r *h1Request) authority() string { return (*http1.Request)(r).Authority() }
func (r *h1Request) pathQuery() string { return (*http1.Request)(r).Path() }
func (r *h1Request) header(lower, _ string) (string, bool) {
	h := r.Header
	first, n := "", 0
	var joined []string
	for _, f := range h {
		if len(f.Name) == len(lower) && strings.EqualFold(f.Name, lower) {
			if n == 1 {
				joined = append(joined, first)
			}
			if n >= 1 {
				joined = append(joined, f.Value)
			}
			first = f.Value
			n++
		}
	}
	switch n {
	case 0:
		return "", false
	case 1:
		return first, true
	}
	return strings.Join(joined, ","), true
}

// isH2 reports whether br starts with the HTTP/2 preface, reading no more
// than it needs to tell.
func isH2(br *bufio.Reader) (bool, error) {
	for n := 1; n <= len(h2Preface); n++ {
		b, err := br.Peek(n)
		if err != nil {
			return false, err
		}
		if b[n-1] != h2Preface[n-1] {
			return false, nil
		}
	}
	return true, nil
}

// serveConn serves an HTTP connection of this listener: h2c goes to the
// listener's net/http server, HTTP/1.x to the http1 engine. o is the
// original destination of tunnelled and inbound connections (nil: none).
func (s *server) serveConn(conn net.Conn, br *bufio.Reader, o *origin) {
	if br == nil {
		br = bufio.NewReaderSize(conn, 4096)
	}
	h2, err := isH2(br)
	if err != nil {
		conn.Close()
		return
	}
	if h2 {
		oc := &originConn{Conn: conn, br: br}
		if o != nil {
			oc.o = *o
		}
		s.hand(oc)
		return
	}
	if s.capture && o == nil {
		if b, _ := br.Peek(8); bytes.Equal(b, []byte("CONNECT ")) {
			s.d.connectH1(s, conn, br)
			return
		}
	}
	s.serveH1(conn, br, o)
}

// h1conn is the per-connection routing state of one HTTP/1 connection;
// Serve calls route, Dial and Done on the connection's goroutine, so its
// fields need no lock, except busy which drain reads.
type h1conn struct {
	s    *server
	o    *origin
	conn net.Conn
	ctx  context.Context // ends with the connection
	busy atomic.Bool
	// end stops Serve after the current exchange when the listener drains
	// (Serve reads Draining only when an exchange starts).
	end context.CancelFunc
	ep  *rendpoint  // the endpoint of the current exchange
	dst string      // the passthrough destination of the current exchange
	obs observation // telemetry of the current exchange
	// Retry state of the current exchange.
	retry    http1.Retry
	rroute   *rroute
	rcl      *rcluster // the cluster of the current exchange (outlier detection)
	tried    []*rendpoint
	retrying bool // holds one of the cluster's max_retries
	// outcomeDone: outlier detection has counted this exchange's outcome.
	outcomeDone bool
	admitted    *rcluster // its circuit breaker admitted this exchange

	done, doneDirect          func(http1.Result)
	dial, dialDst, dialBridge http1.DialFunc
	// remoteAddr and localAddr are the connection's addresses, formatted once.
	remoteAddr, localAddr string
}

func (s *server) serveH1(conn net.Conn, br *bufio.Reader, o *origin) {
	c := &h1conn{s: s, o: o, conn: conn}
	d := s.d
	ctx, end := context.WithCancel(s.ctx)
	defer end()
	c.ctx, c.end = ctx, end
	c.done = func(res http1.Result) {
		c.ep.stats.active.Add(-1)
		if res.UpstreamErr != nil || res.Flags == "UF" || res.Flags == "UC" || res.Flags == "UT" {
			c.ep.stats.failed.Add(1)
		}
		c.finish(res)
	}
	c.doneDirect = c.finish
	c.dial = func(ctx context.Context) (net.Conn, error) { return d.fwd.dialEndpoint(ctx, c.ep) }
	c.dialDst = func(ctx context.Context) (net.Conn, error) {
		return d.dialDirect(ctx, &net.Dialer{Timeout: defaultConnectTimeout}, c.dst)
	}
	c.dialBridge = func(context.Context) (net.Conn, error) { return d.bridge.dial(c.ep), nil }
	c.retry.Next = c.nextAttempt
	c.retry.Backoff = backoff
	if !s.track(conn, c) {
		conn.Close()
		return
	}
	defer s.untrack(conn)
	if err := http1.Serve(ctx, conn, br, c.decide, &s.h1opts); err != nil {
		d.log.Debug("http/1.1 connection ended", "listener", s.name, "err", err)
	}
}

// idle marks the end of an exchange; a draining listener's connection ends here.
func (c *h1conn) idle() {
	c.busy.Store(false)
	if c.s.draining.Load() {
		c.end()
	}
}

// decide routes one request. On an inbound connection whose filter chain
// the current config no longer has (a PeerAuthentication made its port
// STRICT, say), the request is served and the connection closed after it,
// as Envoy drains the connections of a removed filter chain.
func (c *h1conn) decide(req *http1.Request) http1.Decision {
	d := c.route(req)
	if o := c.o; o != nil {
		l := c.s.d.rt.Load().listeners[o.listener]
		if l == nil || l.proxyProto && l.inboundChain(o.port, o.mtls, appHTTP1) == nil {
			d.Close = true
		}
	}
	return d
}

// route routes one request.
func (c *h1conn) route(req *http1.Request) http1.Decision {
	c.busy.Store(true)
	d := c.s.d
	rt := d.rt.Load()
	ch, dst := c.chain(rt, req)
	pathOK := ch == nil || ch.norm.applyH1(req)
	c.begin(req, ch)
	o := &c.obs
	if !pathOK {
		o.detail = detailBadPath
		return c.direct(http.StatusBadRequest, "", "")
	}
	var jwt *jwtResult
	if ch != nil && ch.jwt != nil {
		_, q, _ := strings.Cut(req.Path(), "?")
		res, ok := ch.jwt.authenticate(c.ctx, &req.Header, q)
		if !ok {
			o.detail = detailJWTDenied
			d := c.direct(http.StatusUnauthorized, "", jwtFailedBody)
			d.Header = append(d.Header, http1.Field{Name: "www-authenticate", Value: `Bearer realm="` + req.Authority() + `", error="invalid_token"`})
			return d
		}
		jwt = res
	}
	if ch != nil && len(ch.rbac) > 0 {
		rc := rbacCtx{req: (*h1Request)(req), port: c.port(), jwt: jwt}
		rc.path, _, _ = strings.Cut(req.Path(), "?")
		if c.o != nil {
			rc.principal, rc.source = c.o.principal, c.o.src
		}
		if !authorize(ch.rbac, &rc) {
			o.detail = detailRBACDenied
			return c.direct(http.StatusForbidden, "", rbacDeniedBody)
		}
	}
	if ch == nil {
		if dst != "" && rt.registryOnly {
			o.cluster = blackHoleCluster
			if d.tel.on {
				o.edge = d.tel.hostEdge(req.Authority(), blackHoleCluster)
			}
			return c.direct(http.StatusBadGateway, "UH", "")
		}
		if dst != "" {
			o.cluster, o.upstream = "PassthroughCluster", dst
			if d.tel.on {
				o.edge = d.tel.hostEdge(req.Authority(), "PassthroughCluster")
				d.tel.trace(o, req.Header, func(k, v string) { req.Header.Set(k, v) }, req.Authority()+"/*")
			}
			return c.passthrough(dst)
		}
		return c.direct(http.StatusNotFound, "NR", "")
	}
	t := ch.table(rt)
	if t == nil {
		return c.direct(http.StatusNotFound, "NR", "")
	}
	vh := t.vhost(req.Authority())
	r := vh.route((*h1Request)(req))
	if r == nil {
		return c.direct(http.StatusNotFound, "NR", "")
	}
	o.route = r.name
	if d.tel.Tracer != nil {
		d.tel.trace(o, req.Header, func(k, v string) { req.Header.Set(k, v) }, d.tel.spanName(o, vh.name, r.operation, c.port()))
	}
	var corsHeaders [][2]string
	if ch.cors && r.cors != nil {
		origin := req.Header.Get("origin")
		if r.cors.allowed(origin) {
			if isPreflight(req.Method, origin, req.Header.Get("access-control-request-method")) {
				var h http1.Header
				for _, kv := range r.cors.preflightHeaders(origin) {
					h.Set(kv[0], kv[1])
				}
				return http1.Decision{Status: http.StatusOK, Header: h, Done: c.doneDirect}
			}
			corsHeaders = r.cors.responseHeaders(origin)
		}
	}
	if ch.fault && r.fault != nil {
		if d, ok := c.inject(r.fault.roll()); ok {
			return d
		}
	}
	if ch.ratelimit {
		if l, limited := ch.limited(r, (*h1Request)(req), c.remote()); limited {
			h := http1.Header{{Name: "x-weft-response-flags", Value: "RL"}}
			l.headers.apply(&h)
			return http1.Decision{Status: l.status, Flags: "RL", Body: rateLimitedBody, Header: h, Done: c.doneDirect}
		}
	}
	if r.redirect != nil {
		h := http1.Header{{Name: "location", Value: r.redirect.location("http", req.Authority(), req.Path())}}
		r.respHeaders.apply(&h)
		return http1.Decision{Status: r.redirect.status, Header: h, Done: c.doneDirect}
	}
	if r.direct != nil {
		h := http1.Header{{Name: "content-type", Value: "text/plain"}}
		r.respHeaders.apply(&h)
		return http1.Decision{Status: r.direct.status, Body: r.direct.body, Header: h, Done: c.doneDirect}
	}
	dest := r.pick()
	cl := rt.clusters[dest.name]
	if cl == nil {
		return c.direct(http.StatusServiceUnavailable, "NC", "no healthy upstream")
	}
	o.cl, o.cluster = cl, cl.name
	if cl.kind == "original_dst" {
		o.upstream = dst
		return c.passthrough(dst)
	}
	ep, setCookie := cl.pickFor(r, (*h1Request)(req), c.remote())
	if ep == nil {
		return c.direct(http.StatusServiceUnavailable, "UH", "no healthy upstream")
	}
	if !cl.breaker.admit(c.ctx, !cl.h2) {
		return c.direct(http.StatusServiceUnavailable, "UO", overflowBody)
	}
	c.admitted = cl
	c.ep, c.rcl = ep, cl
	o.upstream = ep.addr
	if d.tel.on && !o.inbound {
		o.edge = d.tel.endpointEdge(cl, ep)
	}
	if ep.tunnel {
		req.Header.Set(PeerHeader, d.tel.peer)
	}
	r.reqHeaders.apply(&req.Header)
	dest.reqHeaders.apply(&req.Header)
	authority := ""
	if r.rewrite != nil {
		if p, ok := r.rewrite.path(r, req.Path()); ok {
			req.SetPath(p)
		}
		authority = r.rewrite.authority
	}
	modify := r.modifyResp
	if corsHeaders != nil {
		modify = withCORS(r.respHeaders, corsHeaders).responseModifier()
	}
	if setCookie != "" || dest.respHeaders != nil {
		inner, destEdits := modify, dest.respHeaders
		modify = func(resp *http1.Response) {
			if inner != nil {
				inner(resp)
			}
			destEdits.apply(&resp.Header)
			if setCookie != "" {
				resp.Header.Add("set-cookie", setCookie)
			}
		}
	}
	if cl.h2 {
		// HTTP/1.1 downstream, h2c upstream: through the bridge (it counts).
		return http1.Decision{Key: "h2|" + ep.key, Dial: c.dialBridge, Done: c.doneDirect, Timeout: r.timeout, ModifyResponse: modify, Authority: authority}
	}
	if cl.outlier != nil {
		// Outlier detection counts the response as its head arrives, as
		// Envoy does, before the client can send its next request.
		inner := modify
		modify = func(resp *http1.Response) {
			if c.ep != nil && c.rcl != nil && !c.outcomeDone {
				c.rcl.outcome(c.ep, resp.Status)
				c.outcomeDone = true
			}
			if inner != nil {
				inner(resp)
			}
		}
	}
	ep.stats.active.Add(1)
	ep.stats.total.Add(1)
	dec := http1.Decision{Key: ep.key, Dial: c.dial, Done: c.done, Timeout: r.timeout, ModifyResponse: modify, Authority: authority,
		AttemptCount: r.attemptCount, MaxRequestsPerConn: cl.maxRequestsPerConn, IdleTimeout: cl.upstreamIdle, MaxConnectionDuration: cl.maxConnDuration}
	if len(r.mirrors) > 0 {
		if targets := d.mirrorTargets(rt, r); len(targets) > 0 {
			dec.Mirror = d.mirrorH1(targets)
		}
	}
	if r.retry != nil {
		c.rroute, c.tried = r, append(c.tried[:0], ep)
		c.retry.PerTryTimeout = r.retry.perTry
		dec.Retry = &c.retry
	}
	return dec
}

// nextAttempt is the http1 engine's retry callback: it decides about the
// attempt that ended and moves the exchange to the next endpoint.
func (c *h1conn) nextAttempt(n int, f http1.Failure) (string, http1.DialFunc, http1.Verdict) {
	c.rcl.outcome(c.ep, f.Status)
	ep, v := c.rroute.retry.verdict(n, f, c.rcl, c.tried)
	if v == http1.Again && !c.retrying {
		if !c.rcl.breaker.retry() {
			return "", nil, http1.Stop
		}
		c.retrying = true
	}
	if v != http1.Again {
		c.outcomeDone = true // this attempt's outcome is the exchange's
		return "", nil, v
	}
	prev := c.ep
	prev.stats.active.Add(-1)
	prev.stats.failed.Add(1)
	ep.stats.active.Add(1)
	ep.stats.total.Add(1)
	c.ep = ep
	c.tried = append(c.tried, ep)
	c.obs.upstream = ep.addr
	if c.s.d.tel.on && !c.obs.inbound {
		c.obs.edge = c.s.d.tel.endpointEdge(c.rcl, ep)
	}
	return ep.key, c.dial, http1.Again
}

// begin starts the telemetry of an exchange: the inbound side takes the
// peer's identity off the request (always, so apps never see it).
func (c *h1conn) begin(req *http1.Request, ch *rchain) {
	inbound := ch != nil && ch.inbound
	tel := c.s.d.tel
	var peer string
	if inbound {
		peer = req.Header.Get(PeerHeader)
		if peer != "" {
			req.Header.Del(PeerHeader)
		}
	}
	if !tel.on {
		return
	}
	o := &c.obs
	*o = observation{proto: stats.HTTP, inbound: inbound, start: time.Now(), ch: ch}
	if ch != nil && ch.statsOv != nil {
		o.dims = ch.statsOv.requestValues((*h1Request)(req))
	}
	if inbound {
		var org origin
		if c.o != nil {
			org = *c.o
		}
		o.edge = tel.inboundEdge(peer, org)
	}
	if tel.details() {
		// The request's strings are immutable (http1 interns every head),
		// so the observation keeps them as they are.
		id := req.Header.Get("x-request-id")
		if id == "" {
			id = http1.NewRequestID()
			req.Header.Add("x-request-id", id)
		}
		o.requestID = id
		o.method = req.Method
		o.path = req.Path()
		o.authority = req.Authority()
		o.userAgent = req.Header.Get("user-agent")
		o.xff = req.Header.Get("x-forwarded-for")
		o.protocol = "HTTP/1.1"
		if req.ProtoMinor == 0 {
			o.protocol = "HTTP/1.0"
		}
		o.remote = c.remote()
		o.local = c.local()
		if c.o != nil {
			o.sni = c.o.sni
		}
	} else if !inbound {
		o.authority = req.Authority()
	}
}

// port is the destination port of the current exchange (inbound: the app's).
func (c *h1conn) port() uint16 {
	if c.o != nil {
		return c.o.port
	}
	return c.s.addr.Port()
}

// remote is the downstream address for the access log: the PROXY header's
// source would be better; the connection's peer is what we have.
func (c *h1conn) remote() string {
	if c.remoteAddr == "" {
		if a := c.conn.RemoteAddr(); a != nil {
			c.remoteAddr = a.String()
		}
	}
	return c.remoteAddr
}

// local is the downstream local address for the access log: the original
// destination of a captured or inbound connection (as Envoy restores it
// with use_original_dst and the PROXY protocol), else the listener's.
func (c *h1conn) local() string {
	if c.o != nil {
		return c.o.dst
	}
	if c.localAddr == "" {
		if a := c.conn.LocalAddr(); a != nil {
			c.localAddr = a.String()
		}
	}
	return c.localAddr
}

// finish ends an exchange: circuit breaker, outlier detection, telemetry.
func (c *h1conn) finish(res http1.Result) {
	if cl := c.admitted; cl != nil {
		cl.breaker.release(!cl.h2)
		if c.retrying {
			cl.breaker.retryDone()
		}
		if c.ep != nil && res.Flags != "DC" && !c.outcomeDone {
			status := res.Status
			if res.UpstreamErr != nil || res.Flags == "UF" || res.Flags == "UC" || res.Flags == "UT" {
				status = 0
			}
			cl.outcome(c.ep, status)
		}
	}
	c.admitted, c.retrying, c.ep, c.rcl, c.rroute, c.outcomeDone = nil, false, nil, nil, nil, false
	c.observe(res)
	c.idle()
}

// observe reports a finished exchange.
func (c *h1conn) observe(res http1.Result) {
	tel := c.s.d.tel
	if !tel.on {
		return
	}
	o := &c.obs
	if o.edge == nil {
		o.edge = tel.fallbackEdge(o)
	}
	if o.span == nil && tel.Tracer != nil {
		o.start = res.Start
		tel.trace(o, nopHeader{}, nil, tel.spanName(o, "", "", c.port())) // a local answer: its own span
	}
	up := time.Duration(-1)
	if res.UpstreamTime > 0 {
		up = res.UpstreamTime
	}
	tel.record(o, res.Start, res.Status, "", res.Flags, res.Duration, up, res.BytesReceived, res.BytesSent)
	*o = observation{}
}

// chain finds the HTTP filter chain for a request, and its original
// destination; a nil chain with a destination means pass it through.
func (c *h1conn) chain(rt *runtime, req *http1.Request) (*rchain, string) {
	s := c.s
	var l *rlistener
	var port uint16
	var dst string
	switch {
	case c.o != nil:
		l, port, dst = rt.listeners[c.o.listener], c.o.port, c.o.dst
	case s.capture:
		dst = hostPort(req.Authority(), 80)
		l, port = s.d.outboundListener(rt, dst)
	default:
		l = rt.listeners[s.name]
		if l != nil {
			port = l.addr.Port()
		}
	}
	if l == nil {
		return nil, dst
	}
	ch := l.chainFor(port, "", appHTTP1)
	if ch == nil || !ch.isHTTP() {
		if s.capture && c.o == nil {
			return nil, dst
		}
		return nil, ""
	}
	return ch, dst
}

func (c *h1conn) passthrough(dst string) http1.Decision {
	if dst == "" {
		return c.direct(http.StatusNotFound, "NR", "")
	}
	c.dst = dst
	return http1.Decision{Key: "passthrough|" + dst, Dial: c.dialDst, Done: c.doneDirect}
}

func (c *h1conn) direct(status int, flags, body string) http1.Decision {
	return http1.Decision{Status: status, Flags: flags, Body: body, Done: c.doneDirect,
		Header: http1.Header{{Name: "x-weft-response-flags", Value: flags}}}
}
