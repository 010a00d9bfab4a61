package http1

import (
	"bufio"
	"strconv"
	"strings"
)

// Response is a parsed HTTP/1.x response head. ReadResponse reuses its
// storage; strings taken from it stay valid after the next ReadResponse.
type Response struct {
	// ProtoMinor is 0 for HTTP/1.0 and 1 for HTTP/1.1.
	ProtoMinor int
	// Status is the status code, e.g. 200.
	Status int
	// Reason is the reason phrase as received (may be empty).
	Reason string
	// Header holds the header fields in order, including hop-by-hop ones.
	Header Header
	// ContentLength is the body length, or -1 when Chunked or when the body
	// ends when the connection closes (UntilClose).
	ContentLength int64
	// Chunked is true when the body uses the chunked transfer coding.
	Chunked bool
	// UntilClose is true when the body ends at connection close.
	UntilClose bool
	// NoBody is true when no body follows whatever the headers say
	// (HEAD requests, 1xx, 204, 304, and 2xx to CONNECT).
	NoBody bool
	// Close is true when the connection closes after this response.
	Close bool
	// Trailer receives the trailer fields of a chunked body once read.
	Trailer Header

	buf []byte
}

// Reset clears r for reuse, keeping its storage.
func (r *Response) Reset() {
	clear(r.Header)
	clear(r.Trailer)
	*r = Response{Header: r.Header[:0], Trailer: r.Trailer[:0], buf: r.buf[:0]}
}

// ReadResponse reads a response head from br into resp, reusing its
// storage, for a request with method reqMethod (which decides whether a
// body follows). Interim 1xx responses are returned like any other; the
// caller reads again after them (101 Switching Protocols ends HTTP). The
// body, if any, is left in br. Errors are as for ReadRequest.
func ReadResponse(br *bufio.Reader, resp *Response, reqMethod string, maxHeader int) error {
	resp.Reset()
	head, err := readHead(br, &resp.buf, maxHeader)
	if err != nil {
		return err
	}
	line, rest := nextLine(head)
	if err := resp.parseStatusLine(line); err != nil {
		return err
	}
	if err := parseFields(rest, &resp.Header); err != nil {
		return err
	}
	return resp.applyFraming(reqMethod)
}

// parseStatusLine parses "HTTP/1.x SP code [SP reason]".
func (r *Response) parseStatusLine(line string) error {
	proto, rest, ok := strings.Cut(line, " ")
	if !ok {
		return malformed("invalid status line %q", line)
	}
	minor, err := parseProto(proto)
	if err != nil {
		return err
	}
	code, reason, _ := strings.Cut(rest, " ")
	st, err := parseStatus(code)
	if err != nil {
		return err
	}
	r.ProtoMinor, r.Status, r.Reason = minor, st, reason
	return nil
}

// applyFraming decides the body framing (RFC 9112 section 6.3).
func (r *Response) applyFraming(reqMethod string) error {
	f, teOther, err := parseFraming(r.Header)
	if err != nil {
		return err
	}
	r.Close = f.close || (r.ProtoMinor == 0 && !f.keep)
	r.ContentLength = -1
	switch {
	case reqMethod == "HEAD" || r.Status < 200 || r.Status == 204 || r.Status == 304,
		reqMethod == "CONNECT" && r.Status < 300:
		r.NoBody, r.ContentLength = true, 0
	case f.chunked && !teOther:
		r.Chunked = true
	case teOther || f.length < 0:
		r.UntilClose, r.Close = true, true
	default:
		r.ContentLength = f.length
	}
	return nil
}

// HasBody reports whether body bytes follow the head.
func (r *Response) HasBody() bool {
	return !r.NoBody && (r.Chunked || r.UntilClose || r.ContentLength > 0)
}

// WriteHead writes the response head for a client speaking HTTP/1.minor:
// hop-by-hop fields removed, framing from ContentLength/Chunked, and
// "Connection: close" when closeConn (or "Connection: keep-alive" for a
// keep-alive HTTP/1.0 client). A body of unknown length is sent chunked to
// HTTP/1.1 clients. It does not flush.
func (r *Response) WriteHead(w *bufio.Writer, minor int, closeConn bool) error {
	r.writeStatusLine(w)
	conn := r.Header.Get("connection")
	for _, f := range r.Header {
		if isHopByHop(f.Name) || (conn != "" && hasToken(conn, f.Name)) {
			continue
		}
		writeField(w, f.Name, f.Value)
	}
	r.writeTail(w, minor, closeConn)
	_, err := w.WriteString("\r\n")
	return err
}

// writeStatusLine writes "HTTP/1.1 code reason\r\n".
func (r *Response) writeStatusLine(w *bufio.Writer) {
	w.WriteString("HTTP/1.1 ")
	w.Write(strconv.AppendInt(w.AvailableBuffer(), int64(r.Status), 10))
	w.WriteByte(' ')
	w.WriteString(r.Reason)
	w.WriteString("\r\n")
}

// writeTail writes framing and connection fields.
func (r *Response) writeTail(w *bufio.Writer, minor int, closeConn bool) {
	switch {
	case r.Status == 101:
		writeField(w, "Connection", "upgrade")
		if u := r.Header.Get("upgrade"); u != "" {
			writeField(w, "Upgrade", u)
		}
		return
	case r.NoBody:
		if r.Status >= 200 && r.Status != 204 && r.Status != 304 {
			if v, ok := r.Header.Lookup("content-length"); ok { // HEAD: keep the length
				writeField(w, "Content-Length", v)
			}
		}
	case r.Chunked || r.UntilClose:
		if minor >= 1 {
			w.WriteString("Transfer-Encoding: chunked\r\n")
		}
	default:
		writeFraming(w, r.ContentLength, false, true)
	}
	if r.Status < 200 {
		return
	}
	if closeConn {
		w.WriteString("Connection: close\r\n")
	} else if minor == 0 {
		w.WriteString("Connection: keep-alive\r\n")
	}
}

// chunkedOut reports whether WriteHead announced a chunked body.
func (r *Response) chunkedOut(minor int) bool {
	return !r.NoBody && r.Status != 101 && (r.Chunked || r.UntilClose) && minor >= 1
}
