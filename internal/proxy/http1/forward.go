package http1

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"
)

// FlagsHeader carries Envoy's response flags on weft's local replies, for
// people and tests reading responses (the access log and metrics have them too).
const FlagsHeader = "x-weft-response-flags"

// Bodies of the local replies to upstream failures, as Envoy words them.
const (
	// ConnectFailureBody answers a request whose upstream could not be
	// reached (flag UF).
	ConnectFailureBody = "upstream connect error or disconnect/reset before headers. reset reason: connection failure"
	// ConnectionTerminationBody answers a request whose upstream closed or
	// reset before a response head (flag UC).
	ConnectionTerminationBody = "upstream connect error or disconnect/reset before headers. reset reason: connection termination"
	// TimeoutBody answers a request whose route timeout expired (flag UT).
	TimeoutBody = "upstream request timeout"
)

// forward sends the request upstream and streams the response back,
// retrying per d.Retry. It reports whether the downstream connection may
// carry another request.
func (s *server) forward(d *Decision, res *Result, closeDown bool) bool {
	req := &s.req
	s.prepare(d)
	s.replay = nil
	retry := d.Retry
	if (retry != nil || d.Mirror != nil) && !s.bufferBody() {
		retry = nil // too large or chunked to send twice
	} else if d.Mirror != nil {
		d.Mirror(req, s.replay)
	}
	for attempt := 1; ; attempt++ {
		if d.AttemptCount {
			req.Header.Set("x-envoy-attempt-count", strconv.Itoa(attempt))
		}
		var deadline, tryDeadline time.Time
		if d.Timeout > 0 {
			deadline = res.Start.Add(d.Timeout)
		}
		tryDeadline = deadline
		if retry != nil && retry.PerTryTimeout > 0 {
			if t := time.Now().Add(retry.PerTryTimeout); deadline.IsZero() || t.Before(deadline) {
				tryDeadline = t
			}
		}
		uc, err := s.pool.Get(s.ctx, d.Key, d.Dial)
		if err != nil {
			res.UpstreamErr = err
			if s.again(d, retry, attempt, Failure{Connect: true}, res, deadline) {
				continue
			}
			return s.fail(res, http.StatusServiceUnavailable, withURX("UF", res), ConnectFailureBody, closeDown || (req.HasBody() && s.replay == nil))
		}
		if !tryDeadline.IsZero() {
			uc.SetDeadline(tryDeadline)
		}
		if req.ExpectContinue && attempt == 1 && s.replay == nil {
			s.bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
			if s.bw.Flush() != nil {
				uc.Close()
				res.Flags = "DC"
				return false
			}
		}
		sent := time.Now()
		uc, err = s.roundTrip(d, res, uc)
		if err != nil {
			var de *errDownstream
			if !errors.As(err, &de) && retry != nil {
				f := Failure{Reset: true}
				var ce *connectError
				switch {
				case errors.As(err, &ce):
					f = Failure{Connect: true}
				case isTimeout(err):
					f = Failure{Timeout: true}
				}
				if s.again(d, retry, attempt, f, res, deadline) {
					continue
				}
			}
			return s.upstreamFailed(d, res, err, closeDown)
		}
		res.UpstreamTime = time.Since(sent)
		if retry != nil && s.resp.Status >= 300 {
			if s.again(d, retry, attempt, Failure{Status: s.resp.Status, GRPCStatus: s.resp.Header.Get("grpc-status")}, res, deadline) {
				uc.Close() // the response is dropped; its connection cannot be reused
				continue
			}
			if res.exhausted {
				res.Flags = "URX"
				s.resp.Header.Set("x-weft-response-flags", "URX")
			}
		}
		if d.ModifyResponse != nil {
			d.ModifyResponse(&s.resp)
		}
		s.resp.Header.Set("x-envoy-upstream-service-time", strconv.FormatInt(res.UpstreamTime.Milliseconds(), 10))
		return s.respond(d, res, uc, closeDown || !s.requestDone())
	}
}

// Retry lets a Decision send its request again after a failed attempt.
type Retry struct {
	// PerTryTimeout bounds each attempt (0: only Decision.Timeout).
	PerTryTimeout time.Duration
	// Next is called after attempt n (1-based) ended in f. It returns the
	// upstream of the next attempt, or a verdict to stop: Stop answers with
	// this failure, Exhausted also marks it URX (the retry limit was hit).
	Next func(n int, f Failure) (key string, dial DialFunc, v Verdict)
	// Backoff returns the pause before retry n (nil: none).
	Backoff func(n int) time.Duration
}

// Verdict is a retry decision.
type Verdict int

// Verdicts of Retry.Next.
const (
	Stop Verdict = iota
	Again
	Exhausted
)

// Failure is how an attempt ended.
type Failure struct {
	Connect    bool   // the upstream could not be reached
	Reset      bool   // it closed or reset before a response head
	Timeout    bool   // the per-try timeout expired
	Status     int    // the response status (0: none)
	GRPCStatus string // grpc-status of a trailers-only gRPC response
}

// again asks the retry policy about a failed attempt and, when it says
// retry, waits out the back-off and switches d to the next upstream.
func (s *server) again(d *Decision, r *Retry, attempt int, f Failure, res *Result, deadline time.Time) bool {
	if r == nil {
		return false
	}
	key, dial, v := r.Next(attempt, f)
	if v == Exhausted {
		res.exhausted = true
	}
	if v != Again {
		return false
	}
	if r.Backoff != nil {
		pause := r.Backoff(attempt)
		if !deadline.IsZero() && time.Now().Add(pause).After(deadline) {
			return false
		}
		t := time.NewTimer(pause)
		select {
		case <-t.C:
		case <-s.ctx.Done():
			t.Stop()
			return false
		}
	}
	d.Key, d.Dial = key, dial
	res.Attempts = attempt + 1
	return true
}

// withURX adds URX when the retry limit was reached.
func withURX(flags string, res *Result) string {
	if res.exhausted {
		return flags + ",URX"
	}
	return flags
}

// bufferBody reads a small, length-framed request body into s.replay so
// retries can send it again; it reports whether the request can be replayed.
func (s *server) bufferBody() bool {
	req := &s.req
	if !req.HasBody() {
		return true
	}
	if req.Chunked || req.ContentLength > maxReplayBody || req.ExpectContinue {
		return false
	}
	s.body.ResetRequest(s.br, req)
	buf := s.replayBuf
	if int64(cap(buf)) < req.ContentLength {
		buf = make([]byte, req.ContentLength)
	}
	buf = buf[:req.ContentLength]
	if _, err := io.ReadFull(&s.body, buf); err != nil {
		return false
	}
	s.replayBuf = buf
	s.replay = buf
	return true
}

// maxReplayBody is the largest request body kept for retries.
const maxReplayBody = 64 << 10

// prepare applies the forwarding rules to the request head.
func (s *server) prepare(d *Decision) {
	req := &s.req
	if d.Authority != "" {
		if req.Form == AbsoluteForm {
			req.authority = d.Authority
		} else {
			req.Header.Set("Host", d.Authority)
		}
	}
	if req.ExpectContinue {
		req.Header.Del("expect") // answered here, as Envoy does
	}
	if !s.opts.NoRequestID && !req.Header.Has("x-request-id") {
		req.Header.Add("x-request-id", NewRequestID())
	}
	if !req.Header.Has("x-forwarded-proto") {
		p := s.opts.ForwardedProto
		if p == "" {
			p = "http"
		}
		req.Header.Add("x-forwarded-proto", p)
	}
}

// roundTrip sends the request on uc and reads the response head, retrying
// once on a fresh connection when a reused one was found closed before any
// response byte and the request can be replayed. It returns the connection
// the response came on; on error the connection is closed.
func (s *server) roundTrip(d *Decision, res *Result, uc *Conn) (*Conn, error) {
	err := s.exchangeOn(uc, res)
	if err == nil {
		return uc, nil
	}
	uc.Close()
	replayable := s.req.Idempotent() && (!s.req.HasBody() || s.replay != nil) && len(s.resp.buf) == 0
	if !uc.Reused || !replayable || isTimeout(err) {
		return nil, err
	}
	uc, derr := s.pool.dial(s.ctx, d.Key, d.Dial)
	if derr != nil {
		return nil, &connectError{derr}
	}
	res.Retried = true
	if d.Timeout > 0 {
		uc.SetDeadline(res.Start.Add(d.Timeout))
	}
	if err := s.exchangeOn(uc, res); err != nil {
		uc.Close()
		return nil, err
	}
	return uc, nil
}

// connectError marks a failed dial during a retry.
type connectError struct{ err error }

func (e *connectError) Error() string { return e.err.Error() }
func (e *connectError) Unwrap() error { return e.err }

// errDownstream marks a failure to read the request body from downstream.
type errDownstream struct{ err error }

func (e *errDownstream) Error() string { return "reading request body: " + e.err.Error() }
func (e *errDownstream) Unwrap() error { return e.err }

// exchangeOn writes the request with its body to uc and reads the final
// response head. A write failure still tries to read a response: the
// upstream may have answered early (e.g. 413) and closed.
func (s *server) exchangeOn(uc *Conn, res *Result) error {
	req := &s.req
	s.resp.Reset()
	werr := req.WriteHead(uc.bw)
	if werr == nil && s.replay != nil {
		_, werr = uc.bw.Write(s.replay)
		res.BytesReceived = int64(len(s.replay))
	} else if werr == nil && req.HasBody() {
		s.body.ResetRequest(s.br, req)
		n, rerr, err := copyBody(uc.bw, &s.body, req.Chunked, &req.Trailer)
		res.BytesReceived = n
		if rerr != nil {
			return &errDownstream{rerr}
		}
		werr = err
	}
	if werr == nil {
		werr = uc.bw.Flush()
	}
	for {
		err := ReadResponse(uc.br, &s.resp, req.Method, s.opts.MaxHeaderBytes)
		if err != nil {
			if werr != nil && len(s.resp.buf) == 0 {
				return werr
			}
			return err
		}
		if s.resp.Status >= 200 || s.resp.Status == 101 {
			return nil
		}
		if s.resp.Status == 100 || req.ProtoMinor == 0 {
			continue // 100 was answered locally; HTTP/1.0 has no 1xx
		}
		s.resp.WriteHead(s.bw, req.ProtoMinor, false)
		if err := s.bw.Flush(); err != nil {
			return &errDownstream{err}
		}
	}
}

// requestDone reports whether the request body has been fully read.
func (s *server) requestDone() bool {
	return !s.req.HasBody() || s.replay != nil || s.body.Done()
}

// upstreamFailed answers a request whose upstream exchange failed before a
// response head.
func (s *server) upstreamFailed(d *Decision, res *Result, err error, closeDown bool) bool {
	var de *errDownstream
	if errors.As(err, &de) {
		res.Flags = "DC"
		return false
	}
	res.UpstreamErr = err
	closeDown = closeDown || !s.requestDone()
	var ce *connectError
	switch {
	case errors.As(err, &ce):
		return s.fail(res, http.StatusServiceUnavailable, withURX("UF", res), ConnectFailureBody, closeDown)
	case isTimeout(err):
		return s.fail(res, http.StatusGatewayTimeout, withURX("UT", res), TimeoutBody, closeDown)
	}
	return s.fail(res, http.StatusServiceUnavailable, withURX("UC", res), ConnectionTerminationBody, closeDown)
}

// fail sends a local error response.
func (s *server) fail(res *Result, status int, flags, body string, closeDown bool) bool {
	res.Status, res.Flags = status, flags
	s.writeDirect(s.req.ProtoMinor, status, Header{{Name: FlagsHeader, Value: flags}}, body, closeDown)
	if s.bw.Flush() != nil {
		res.Flags = "DC"
		return false
	}
	if s.debug {
		s.log.Debug("upstream failure", "component", "http1", "flags", flags, "error", res.UpstreamErr)
	}
	return !closeDown
}

// isTimeout reports whether err is a deadline expiry.
func isTimeout(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded)
}

// respond streams the response head and body downstream and returns uc to
// the pool when the exchange ended cleanly.
func (s *server) respond(d *Decision, res *Result, uc *Conn, closeDown bool) bool {
	req, resp := &s.req, &s.resp
	tunnel := (resp.Status == 101 && req.Upgrade != "") || (req.Method == "CONNECT" && resp.Status/100 == 2)
	if resp.Status == 101 && !tunnel {
		uc.Close()
		res.UpstreamErr = errors.New("upstream switched protocols without an upgrade request")
		return s.fail(res, http.StatusServiceUnavailable, "UC", ConnectionTerminationBody, true)
	}
	chunkedOut := resp.chunkedOut(req.ProtoMinor)
	if resp.HasBody() && !chunkedOut && resp.ContentLength < 0 {
		closeDown = true // HTTP/1.0 client: the end of the body is the close
	}
	res.Status = resp.Status
	resp.WriteHead(s.bw, req.ProtoMinor, closeDown && !tunnel)
	if tunnel {
		s.tunnel(uc, res)
		return false
	}
	if resp.HasBody() {
		s.body.ResetResponse(uc.br, resp)
		n, rerr, werr := copyBody(s.bw, &s.body, chunkedOut, &resp.Trailer)
		res.BytesSent = n
		if rerr != nil || werr != nil {
			s.bw.Flush()
			uc.Close()
			res.Flags, res.UpstreamErr = "DC", werr
			if rerr != nil {
				res.Flags, res.UpstreamErr = "UC", rerr
			}
			return false
		}
	}
	if err := s.bw.Flush(); err != nil {
		uc.Close()
		res.Flags = "DC"
		return false
	}
	uc.Requests++
	if resp.Close || resp.UntilClose || (d.MaxRequestsPerConn > 0 && uc.Requests >= d.MaxRequestsPerConn) ||
		(d.MaxConnectionDuration > 0 && time.Since(uc.created) >= d.MaxConnectionDuration) {
		uc.Close()
	} else {
		uc.idleTimeout = d.IdleTimeout
		if d.Timeout > 0 {
			uc.SetDeadline(time.Time{})
		}
		s.pool.Put(uc)
	}
	return !closeDown
}

// tunnel splices the downstream and upstream connections after a 101 or a
// CONNECT 2xx until upstream ends; a downstream end half-closes upstream.
func (s *server) tunnel(uc *Conn, res *Result) {
	if n := uc.br.Buffered(); n > 0 {
		p, _ := uc.br.Peek(n)
		s.bw.Write(p)
		uc.br.Discard(n)
	}
	if s.bw.Flush() != nil {
		uc.Close()
		return
	}
	done := make(chan int64, 1)
	go func() {
		n, _ := io.Copy(uc.Conn, s.br)
		closeWrite(uc.Conn)
		done <- n
	}()
	n, _ := io.Copy(s.conn, uc.br)
	res.BytesSent = n
	s.conn.Close()
	uc.Close()
	res.BytesReceived = <-done
}

// closeWrite half-closes c when it supports it.
func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
}

// copyBody streams b to w, re-encoding it chunked when chunked is set (with
// trailer as trailer fields). w is flushed whenever the source has nothing
// buffered, so slow bodies stream. rerr is a read (or framing) error, werr
// a write error.
func copyBody(w *bufio.Writer, b *Body, chunked bool, trailer *Header) (n int64, rerr, werr error) {
	for !b.done {
		if w.Buffered() > 0 && b.wouldBlock() {
			if werr = w.Flush(); werr != nil {
				return n, nil, werr
			}
		}
		p, err := b.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return n, err, nil
		}
		if chunked {
			w.Write(strconv.AppendInt(w.AvailableBuffer(), int64(len(p)), 16))
			w.WriteString("\r\n")
		}
		_, werr = w.Write(p)
		if chunked {
			_, werr = w.WriteString("\r\n")
		}
		if werr != nil {
			return n, nil, werr
		}
		n += int64(len(p))
		if err := b.consumed(len(p)); err != nil {
			return n, err, nil
		}
	}
	if chunked {
		w.WriteString("0\r\n")
		if trailer != nil {
			for _, f := range *trailer {
				w.WriteString(f.Name)
				w.WriteString(": ")
				w.WriteString(f.Value)
				w.WriteString("\r\n")
			}
		}
		_, werr = w.WriteString("\r\n")
	}
	return n, nil, werr
}
