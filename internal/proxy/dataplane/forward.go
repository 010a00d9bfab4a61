package dataplane

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/weft-mesh/weft/internal/proxy/http1"
	"github.com/weft-mesh/weft/internal/proxy/stats"
)

// forwarder sends requests upstream over pooled connections.
type forwarder struct {
	d   *Dataplane
	h1  *http.Transport
	h2c *http.Transport
}

type endpointKey struct{}

// connectError marks a failure to connect upstream (response flag UF).
type connectError struct{ err error }

func (e *connectError) Error() string { return "connection failure: " + e.err.Error() }
func (e *connectError) Unwrap() error { return e.err }

func newForwarder(d *Dataplane) *forwarder {
	f := &forwarder{d: d}
	dial := func(ctx context.Context, _, addr string) (net.Conn, error) {
		ep, _ := ctx.Value(endpointKey{}).(*rendpoint)
		if ep == nil || ep.addr != addr {
			ep = &rendpoint{addr: addr}
		}
		return f.dialEndpoint(ctx, ep)
	}
	f.h1 = &http.Transport{
		DialContext:         dial,
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		Proxy:               nil,
	}
	p := new(http.Protocols)
	p.SetUnencryptedHTTP2(true)
	f.h2c = &http.Transport{DialContext: dial, Protocols: p, DisableCompression: true, IdleConnTimeout: 90 * time.Second}
	return f
}

// dialEndpoint connects to an endpoint, through its sidecar's inbound port
// with a PROXY v2 header when it has one.
//
// The cluster's connect timeout bounds the whole connect, TLS handshake
// included, as Envoy counts a connection connected only once its transport
// socket is: a peer that accepts and never answers the handshake fails
// the attempt instead of holding it (and its pool slot) for as long as the
// request lives.
func (f *forwarder) dialEndpoint(ctx context.Context, ep *rendpoint) (net.Conn, error) {
	timeout := ep.connectTimeout
	if timeout == 0 {
		timeout = defaultConnectTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	d := net.Dialer{}
	if !ep.tunnel {
		if src := f.d.passthroughSource(ep.ap.Addr()); src != nil {
			d.LocalAddr = src
		}
		c, err := f.d.dialDirect(ctx, &d, ep.addr)
		if err != nil {
			return nil, &connectError{err}
		}
		if ep.tls != nil {
			return originate(ctx, c, ep.tls)
		}
		return c, nil
	}
	// The tunnel leaves from our pod IP, which the PROXY header names as the source.
	d.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(f.d.opts.IP, 0))
	peer := netip.AddrPortFrom(ep.ap.Addr(), uint16(f.d.opts.InboundPort))
	c, err := d.DialContext(ctx, "tcp", peer.String())
	if err != nil {
		return nil, &connectError{err}
	}
	src := netip.AddrPortFrom(f.d.opts.IP, 0)
	if ta, ok := c.LocalAddr().(*net.TCPAddr); ok {
		src = netip.AddrPortFrom(f.d.opts.IP, uint16(ta.Port))
	}
	if err := writeProxyHeader(c, src, ep.ap); err != nil {
		c.Close()
		return nil, &connectError{err}
	}
	if ep.mtls != nil && f.d.opts.Certs != nil {
		return f.d.dialMTLS(ctx, c, ep.mtls)
	}
	return c, nil
}

func (f *forwarder) closeIdle() {
	f.h1.CloseIdleConnections()
	f.h2c.CloseIdleConnections()
}

// serve routes r with chain c and forwards it. dst is the original destination ("" on gateways).
func (f *forwarder) serve(w http.ResponseWriter, r *http.Request, rt *runtime, c *rchain, dst string) {
	pathOK := c.norm.applyStd(r)
	f.observed(w, r, c, func(w http.ResponseWriter, o *observation) {
		if !pathOK {
			f.direct(w, r, http.StatusBadRequest, "", "")
			return
		}
		f.route(w, r, rt, c, dst, o)
	})
}

// observed runs fn and reports the exchange it served, when telemetry is on.
func (f *forwarder) observed(w http.ResponseWriter, r *http.Request, ch *rchain, fn func(http.ResponseWriter, *observation)) {
	inbound := ch != nil && ch.inbound
	tel := f.d.tel
	var peer string
	if inbound {
		peer = r.Header.Get(PeerHeader)
		r.Header.Del(PeerHeader)
	}
	if !tel.on {
		o := observation{inbound: inbound}
		fn(w, &o)
		return
	}
	start := time.Now()
	o := &observation{proto: stats.HTTP, inbound: inbound, start: start, ch: ch}
	if ch != nil && ch.statsOv != nil {
		o.dims = ch.statsOv.requestValues((*stdRequest)(r))
	}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc") {
		o.proto = stats.GRPC
	}
	if inbound {
		org, _ := r.Context().Value(dstKey{}).(origin)
		o.edge = tel.inboundEdge(peer, org)
	}
	if tel.details() {
		if r.Header.Get("X-Request-Id") == "" {
			r.Header.Set("X-Request-Id", http1.NewRequestID())
		}
		o.method, o.path, o.authority, o.protocol = r.Method, r.URL.RequestURI(), r.Host, r.Proto
		o.userAgent, o.requestID, o.xff = r.UserAgent(), r.Header.Get("X-Request-Id"), r.Header.Get("X-Forwarded-For")
		o.remote = r.RemoteAddr
		if org, ok := r.Context().Value(dstKey{}).(origin); ok && org.dst != "" {
			o.local, o.sni = org.dst, org.sni
		} else if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
			o.local = a.String()
		}
	}
	body := &countingBody{ReadCloser: r.Body}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = body
	}
	rec := &recorder{ResponseWriter: w}
	fn(rec, o)
	if o.edge == nil {
		o.edge = tel.fallbackEdge(o)
	}
	if o.span == nil && tel.Tracer != nil {
		tel.trace(o, nopHeader{}, nil, tel.spanName(o, "", "", 0))
	}
	flags := rec.Header().Get("X-Weft-Response-Flags")
	tel.record(o, start, rec.status, rec.grpcStatus(), flags, time.Since(start),
		upstreamTime(rec.Header().Get("X-Envoy-Upstream-Service-Time")), body.n, rec.bytes)
}

// countingBody counts the request body bytes read.
type countingBody struct {
	io.ReadCloser
	n int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	return n, err
}

// route routes r with chain c and forwards it, noting in o where it went.
func (f *forwarder) route(w http.ResponseWriter, r *http.Request, rt *runtime, c *rchain, dst string, o *observation) {
	var jwt *jwtResult
	if c.jwt != nil {
		res, ok := c.jwt.authenticate(r.Context(), r.Header, r.URL.RawQuery)
		if !ok {
			o.detail = detailJWTDenied
			w.Header().Set("WWW-Authenticate", `Bearer realm="`+r.Host+`", error="invalid_token"`)
			f.direct(w, r, http.StatusUnauthorized, "", jwtFailedBody)
			return
		}
		jwt = res
	}
	if len(c.rbac) > 0 {
		org, _ := r.Context().Value(dstKey{}).(origin)
		path, _, _ := strings.Cut((*stdRequest)(r).pathQuery(), "?")
		rc := rbacCtx{req: (*stdRequest)(r), path: path, port: portOf(dst, r.Host), principal: org.principal, source: org.src, jwt: jwt}
		if !authorize(c.rbac, &rc) {
			o.detail = detailRBACDenied
			f.direct(w, r, http.StatusForbidden, "", rbacDeniedBody)
			return
		}
	}
	t := c.table(rt)
	if t == nil {
		f.direct(w, r, http.StatusNotFound, "NR", "")
		return
	}
	vh := t.vhost(r.Host)
	if vh == nil {
		f.direct(w, r, http.StatusNotFound, "NR", "")
		return
	}
	route := vh.route((*stdRequest)(r))
	if route == nil {
		f.direct(w, r, http.StatusNotFound, "NR", "")
		return
	}
	o.route = route.name
	if f.d.tel.Tracer != nil {
		f.d.tel.trace(o, r.Header, r.Header.Set, f.d.tel.spanName(o, vh.name, route.operation, portOf(dst, r.Host)))
	}
	var corsHeaders [][2]string
	if c.cors && route.cors != nil {
		origin := r.Header.Get("Origin")
		if route.cors.allowed(origin) {
			if isPreflight(r.Method, origin, r.Header.Get("Access-Control-Request-Method")) {
				for _, kv := range route.cors.preflightHeaders(origin) {
					w.Header().Set(kv[0], kv[1])
				}
				w.WriteHeader(http.StatusOK)
				return
			}
			corsHeaders = route.cors.responseHeaders(origin)
		}
	}
	if c.fault && route.fault != nil && f.inject(w, r, route.fault.roll()) {
		return
	}
	if c.ratelimit {
		if l, limited := c.limited(route, (*stdRequest)(r), r.RemoteAddr); limited {
			l.headers.apply(w.Header())
			f.direct(w, r, l.status, "RL", rateLimitedBody)
			return
		}
	}
	if route.redirect != nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 1<<16))
		w.Header().Set("Location", route.redirect.location("http", r.Host, r.URL.RequestURI()))
		route.respHeaders.apply(w.Header())
		w.WriteHeader(route.redirect.status)
		return
	}
	if route.direct != nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 1<<16))
		w.Header().Set("Content-Type", "text/plain")
		route.respHeaders.apply(w.Header())
		w.WriteHeader(route.direct.status)
		_, _ = io.WriteString(w, route.direct.body)
		return
	}
	dest := route.pick()
	cl := rt.clusters[dest.name]
	if cl == nil {
		f.direct(w, r, http.StatusServiceUnavailable, "NC", "no healthy upstream")
		return
	}
	o.cl, o.cluster = cl, cl.name
	if cl.kind == "original_dst" {
		o.upstream = dst
		f.passthrough(w, r, dst)
		return
	}
	ep, setCookie := cl.pickFor(route, (*stdRequest)(r), r.RemoteAddr)
	if ep == nil {
		f.direct(w, r, http.StatusServiceUnavailable, "UH", "no healthy upstream")
		return
	}
	if setCookie != "" {
		w.Header().Add("Set-Cookie", setCookie)
	}
	h1up := !cl.h2 && !(cl.downstreamProto && r.ProtoMajor == 2)
	if !cl.breaker.admit(r.Context(), h1up) {
		f.direct(w, r, http.StatusServiceUnavailable, "UO", overflowBody)
		return
	}
	defer cl.breaker.release(h1up)
	o.upstream = ep.addr
	if !o.inbound {
		o.edge = f.d.tel.endpointEdge(cl, ep)
	}
	if ep.tunnel {
		r.Header.Set(PeerHeader, f.d.tel.peer)
	}
	route.reqHeaders.apply(r.Header)
	dest.reqHeaders.apply(r.Header)
	if rw := route.rewrite; rw != nil {
		if p, ok := rw.path(route, r.URL.RequestURI()); ok {
			if u, err := url.ParseRequestURI(p); err == nil {
				r.URL.Path, r.URL.RawPath, r.URL.RawQuery = u.Path, u.RawPath, u.RawQuery
			}
		}
		if rw.authority != "" {
			r.Host = rw.authority
		}
	}
	if len(route.mirrors) > 0 {
		f.mirror(r, rt, route)
	}
	var rc *retryCtx
	if route.retry != nil {
		rc = &retryCtx{policy: route.retry, cl: cl, tried: []*rendpoint{ep}, o: o}
	}
	if route.attemptCount {
		r.Header.Set("X-Envoy-Attempt-Count", "1")
	}
	f.forward(w, r, ep, cl, route.timeout, withCORS(route.respHeaders.then(dest.respHeaders), corsHeaders), rc)
}

// passthrough forwards to the original destination as it is.
func (f *forwarder) passthrough(w http.ResponseWriter, r *http.Request, dst string) {
	if dst == "" {
		f.direct(w, r, http.StatusNotFound, "NR", "")
		return
	}
	f.forwardTo(w, r, &rendpoint{addr: dst, stats: &endpointStats{}}, r.ProtoMajor == 2, 0, nil, nil, nil)
}

// direct answers without going upstream, with Envoy's response flag and body.
func (f *forwarder) direct(w http.ResponseWriter, r *http.Request, code int, flag, body string) {
	_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 1<<16))
	w.Header().Set("x-weft-response-flags", flag)
	if body != "" {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	}
	w.WriteHeader(code)
	_, _ = io.WriteString(w, body)
}

// hopHeaders are connection-specific and never forwarded.
var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// retryCtx is the retry state of one request on the net/http path.
type retryCtx struct {
	policy   *rretry
	cl       *rcluster
	tried    []*rendpoint
	o        *observation
	retrying bool // holds one of the cluster's max_retries
}

// forward sends r to ep of cluster cl, retrying per rc.
func (f *forwarder) forward(w http.ResponseWriter, r *http.Request, ep *rendpoint, cl *rcluster, timeout time.Duration, respHeaders *headerEdits, rc *retryCtx) {
	f.forwardTo(w, r, ep, cl.h2 || (cl.downstreamProto && r.ProtoMajor == 2), timeout, respHeaders, rc, cl)
	if rc != nil && rc.retrying {
		cl.breaker.retryDone()
	}
}

// forwardTo sends r to ep (of cluster cl, nil for passthrough and the bridge).
func (f *forwarder) forwardTo(w http.ResponseWriter, r *http.Request, ep *rendpoint, h2 bool, timeout time.Duration, respHeaders *headerEdits, rc *retryCtx, cl *rcluster) {
	ctx := r.Context()
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	var body *replayBody
	if rc != nil && r.Body != nil && r.Body != http.NoBody {
		body = &replayBody{src: r.Body}
	}
	tr := f.h1
	if h2 {
		tr = f.h2c
		if r.ProtoMajor == 2 {
			_ = http.NewResponseController(w).EnableFullDuplex()
		}
	}
	start := time.Now()
	exhausted := false
	for attempt := 1; ; attempt++ {
		actx := context.WithValue(ctx, endpointKey{}, ep)
		cancelTry := context.CancelFunc(func() {})
		if rc != nil && rc.policy.perTry > 0 {
			actx, cancelTry = context.WithTimeout(actx, rc.policy.perTry)
		}
		out := r.Clone(actx)
		out.URL.Scheme, out.URL.Host, out.RequestURI, out.Host = "http", ep.addr, "", r.Host
		if body != nil {
			out.Body = body.attempt()
		}
		if r.ContentLength == 0 && r.ProtoMajor == 1 {
			out.Body = nil
		}
		for _, h := range hopHeaders {
			out.Header.Del(h)
		}
		if r.ProtoMajor == 2 && r.Header.Get("Te") == "trailers" {
			out.Header.Set("Te", "trailers")
		}
		if out.Header.Get("X-Request-Id") == "" {
			out.Header.Set("X-Request-Id", http1.NewRequestID())
		}
		if out.Header.Get("X-Forwarded-Proto") == "" {
			out.Header.Set("X-Forwarded-Proto", "http")
		}
		if attempt > 1 {
			out.Header.Set("X-Envoy-Attempt-Count", attemptCount(attempt))
		}
		ep.stats.active.Add(1)
		ep.stats.total.Add(1)
		resp, err := tr.RoundTrip(out)
		ep.stats.active.Add(-1)
		if err != nil {
			ep.stats.failed.Add(1)
			cancelTry()
			if cl != nil && r.Context().Err() == nil {
				cl.outcome(ep, 0)
			}
			if r.Context().Err() != nil {
				return // the client went away
			}
			var ce *connectError
			fl := http1.Failure{Reset: true}
			switch {
			case errors.As(err, &ce):
				fl = http1.Failure{Connect: true}
			case errors.Is(actx.Err(), context.DeadlineExceeded) && ctx.Err() == nil:
				fl = http1.Failure{Timeout: true}
			}
			if ctx.Err() == nil {
				if next, v := rc.next(attempt, fl, body); v == http1.Again {
					ep = next
					if f.pause(ctx, attempt) {
						continue
					}
				} else if v == http1.Exhausted {
					exhausted = true
				}
			}
			urx := ""
			if exhausted {
				urx = ",URX"
			}
			switch {
			case errors.Is(ctx.Err(), context.DeadlineExceeded) || fl.Timeout:
				f.direct(w, r, http.StatusGatewayTimeout, "UT"+urx, "upstream request timeout")
			case fl.Connect:
				f.direct(w, r, http.StatusServiceUnavailable, "UF"+urx, "upstream connect error or disconnect/reset before headers. reset reason: connection failure")
			default:
				f.direct(w, r, http.StatusServiceUnavailable, "UC"+urx, "upstream connect error or disconnect/reset before headers. reset reason: connection termination")
			}
			return
		}
		if cl != nil {
			cl.outcome(ep, resp.StatusCode)
		}
		if rc != nil && (resp.StatusCode >= 300 || resp.Header.Get("Grpc-Status") != "") {
			fl := http1.Failure{Status: resp.StatusCode, GRPCStatus: resp.Header.Get("Grpc-Status")}
			if next, v := rc.next(attempt, fl, body); v == http1.Again {
				resp.Body.Close()
				cancelTry()
				ep = next
				if f.pause(ctx, attempt) {
					continue
				}
				f.direct(w, r, http.StatusServiceUnavailable, "UC", "upstream connect error or disconnect/reset before headers. reset reason: connection termination")
				return
			} else if v == http1.Exhausted {
				w.Header().Set("x-weft-response-flags", "URX")
			}
		}
		copyResponse(w, resp, start, respHeaders)
		resp.Body.Close()
		cancelTry()
		return
	}
}

// inject applies a fault to an HTTP/2 (or bridged) request; it reports
// whether it answered the request itself.
func (f *forwarder) inject(w http.ResponseWriter, r *http.Request, a faultAction) bool {
	if a.delay > 0 {
		t := time.NewTimer(a.delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return true
		}
	}
	if !a.abort {
		return false
	}
	if a.grpcStatus >= 0 {
		h := w.Header()
		h.Set("Content-Type", "application/grpc")
		h.Set("Grpc-Status", strconv.Itoa(a.grpcStatus))
		h.Set("Grpc-Message", faultAbortBody)
		h.Set("x-weft-response-flags", "FI")
		w.WriteHeader(http.StatusOK)
		return true
	}
	f.direct(w, r, a.status, "FI", faultAbortBody)
	return true
}

// portOf is the port of an original destination, else of the authority.
func portOf(dst, authority string) uint16 {
	for _, hp := range []string{dst, authority} {
		if _, p, err := net.SplitHostPort(hp); err == nil {
			if n, err := strconv.Atoi(p); err == nil {
				return uint16(n)
			}
		}
	}
	return 0
}
