package http1

import (
	"bufio"
	"strings"
)

// Form is the form of a request target (RFC 9112 section 3.2).
type Form uint8

// The request-target forms.
const (
	// OriginForm is "/path?query".
	OriginForm Form = iota
	// AbsoluteForm is "http://host:port/path?query", sent to proxies.
	AbsoluteForm
	// AuthorityForm is "host:port", used only by CONNECT.
	AuthorityForm
	// AsteriskForm is "*", used only by OPTIONS.
	AsteriskForm
)

// Request is a parsed HTTP/1.x request head. ReadRequest reuses its storage;
// strings taken from it stay valid after the next ReadRequest.
type Request struct {
	// Method is the request method as received, e.g. "GET".
	Method string
	// Target is the request-target as received.
	Target string
	// Form is the form of Target.
	Form Form
	// ProtoMinor is 0 for HTTP/1.0 and 1 for HTTP/1.1.
	ProtoMinor int
	// Header holds the header fields in order, including hop-by-hop ones.
	Header Header
	// ContentLength is the body length, 0 for none, or -1 when Chunked.
	ContentLength int64
	// Chunked is true when the body uses the chunked transfer coding.
	Chunked bool
	// Close is true when the connection must close after this exchange
	// (Connection: close, or HTTP/1.0 without Connection: keep-alive).
	Close bool
	// Upgrade holds the Upgrade header when Connection lists "upgrade"
	// (e.g. "websocket"), else "".
	Upgrade string
	// ExpectContinue is true for "Expect: 100-continue".
	ExpectContinue bool
	// Trailer receives the trailer fields of a chunked body once read.
	Trailer Header

	scheme    string // absolute-form scheme
	authority string // absolute-form or authority-form host[:port]
	path      string // absolute-form path, or Target
	buf       []byte
}

// Reset clears r for reuse, keeping its storage.
func (r *Request) Reset() {
	clear(r.Header)
	clear(r.Trailer)
	*r = Request{Header: r.Header[:0], Trailer: r.Trailer[:0], buf: r.buf[:0]}
}

// ReadRequest reads a request head from br into req, reusing req's storage.
// The body, if any, is left in br (see Body). It returns io.EOF when br
// ends before any byte, ErrHeaderTooLarge when the head exceeds maxHeader
// bytes (<= 0: DefaultMaxHeaderBytes), and an error wrapping ErrMalformed
// for invalid syntax or framing.
func ReadRequest(br *bufio.Reader, req *Request, maxHeader int) error {
	req.Reset()
	head, err := readHead(br, &req.buf, maxHeader)
	if err != nil {
		return err
	}
	line, rest := nextLine(head)
	if err := req.parseRequestLine(line); err != nil {
		return err
	}
	if err := parseFields(rest, &req.Header); err != nil {
		return err
	}
	return req.applyFraming()
}

// parseRequestLine parses "METHOD SP target SP HTTP/1.x".
func (r *Request) parseRequestLine(line string) error {
	m, rest, ok1 := strings.Cut(line, " ")
	t, proto, ok2 := strings.Cut(rest, " ")
	if !ok1 || !ok2 || !isToken(m) || t == "" {
		return malformed("invalid request line %q", line)
	}
	minor, err := parseProto(proto)
	if err != nil {
		return err
	}
	for i := 0; i < len(t); i++ {
		if t[i] <= ' ' || t[i] == 0x7f {
			return malformed("invalid request target %q", t)
		}
	}
	r.Method, r.Target, r.ProtoMinor = m, t, minor
	return r.parseTarget()
}

// parseTarget classifies Target and splits absolute-form.
func (r *Request) parseTarget() error {
	t := r.Target
	switch {
	case t[0] == '/':
		r.Form, r.path = OriginForm, t
	case r.Method == "CONNECT":
		if strings.ContainsAny(t, "/?#@") {
			return malformed("invalid CONNECT target %q", t)
		}
		r.Form, r.authority = AuthorityForm, t
	case t == "*" && r.Method == "OPTIONS":
		r.Form, r.path = AsteriskForm, t
	default:
		scheme, rest, ok := strings.Cut(t, "://")
		if !ok || !isToken(scheme) || rest == "" {
			return malformed("invalid request target %q", t)
		}
		i := strings.IndexAny(rest, "/?")
		auth, path := rest, "/"
		if i >= 0 {
			auth, path = rest[:i], rest[i:]
			if path[0] == '?' {
				path = "/" + path
			}
		}
		if auth == "" || strings.ContainsAny(auth, "@#") {
			return malformed("invalid authority in %q", t)
		}
		r.Form, r.scheme, r.authority, r.path = AbsoluteForm, scheme, auth, path
	}
	return nil
}

// applyFraming derives body framing and connection handling from headers.
func (r *Request) applyFraming() error {
	f, teOther, err := parseFraming(r.Header)
	if err != nil {
		return err
	}
	if teOther {
		return malformed("unsupported Transfer-Encoding")
	}
	r.Chunked = f.chunked
	r.ContentLength = f.length
	if !f.chunked && f.length < 0 {
		r.ContentLength = 0 // a request without framing has no body
	}
	r.Close = f.close || (r.ProtoMinor == 0 && !f.keep)
	if f.upgrade {
		r.Upgrade = r.Header.Get("upgrade")
	}
	if e, ok := r.Header.Lookup("expect"); ok && strings.EqualFold(e, "100-continue") {
		r.ExpectContinue = r.ProtoMinor >= 1
	}
	if r.ProtoMinor >= 1 && r.Form != AuthorityForm {
		n := 0
		for i := range r.Header {
			if sameName(r.Header[i].Name, "host") {
				n++
			}
		}
		if n > 1 || (n == 0 && r.Form != AbsoluteForm) {
			return malformed("HTTP/1.1 request needs exactly one Host header")
		}
	}
	return nil
}

// Authority returns the destination host[:port]: the authority of an
// absolute-form or authority-form target, else the Host header.
func (r *Request) Authority() string {
	if r.authority != "" {
		return r.authority
	}
	return r.Header.Get("host")
}

// Host returns Authority without its port.
func (r *Request) Host() string {
	a := r.Authority()
	if strings.HasPrefix(a, "[") { // [v6]:port
		if i := strings.IndexByte(a, ']'); i > 0 {
			return a[1:i]
		}
		return a
	}
	if i := strings.LastIndexByte(a, ':'); i >= 0 {
		return a[:i]
	}
	return a
}

// Scheme returns the scheme of an absolute-form target, else "".
func (r *Request) Scheme() string { return r.scheme }

// Path returns the origin-form target ("/path?query") the request has or
// will have upstream: absolute-form is reduced to its path and query.
// It is "" for CONNECT and "*" for OPTIONS *.
func (r *Request) Path() string { return r.path }

// SetPath replaces the path and query sent upstream.
func (r *Request) SetPath(p string) { r.path = p }

// HasBody reports whether a body follows the head.
func (r *Request) HasBody() bool { return r.Chunked || r.ContentLength > 0 }

// Idempotent reports whether the method is idempotent (RFC 9110 9.2.2).
func (r *Request) Idempotent() bool {
	switch r.Method {
	case "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE":
		return true
	}
	return false
}

// WriteHead writes the request head as it goes upstream: HTTP/1.1,
// origin-form target (Path), hop-by-hop fields removed (Upgrade and
// "Connection: upgrade" kept when Upgrade is set), a Host field from the
// absolute-form authority when needed, and framing from ContentLength and
// Chunked. It does not flush.
func (r *Request) WriteHead(w *bufio.Writer) error {
	w.WriteString(r.Method)
	w.WriteByte(' ')
	if r.Form == AuthorityForm {
		w.WriteString(r.authority)
	} else {
		w.WriteString(r.path)
	}
	w.WriteString(" HTTP/1.1\r\n")
	hostDone := false
	if r.Form == AbsoluteForm {
		writeField(w, "host", r.authority)
		hostDone = true
	}
	conn := r.Header.Get("connection")
	for _, f := range r.Header {
		if isHopByHop(f.Name) || (conn != "" && hasToken(conn, f.Name)) {
			continue
		}
		if len(f.Name) == 4 && strings.EqualFold(f.Name, "host") {
			if hostDone {
				continue
			}
			hostDone = true
		}
		writeField(w, f.Name, f.Value)
	}
	if !hostDone && r.Form != AuthorityForm {
		w.WriteString("Host: \r\n") // HTTP/1.0 without Host: RFC 9112 3.2 wants an empty one
	}
	if r.Upgrade != "" {
		writeField(w, "Connection", "upgrade")
		writeField(w, "Upgrade", r.Upgrade)
	}
	writeFraming(w, r.ContentLength, r.Chunked, r.HasBody() || r.Method == "POST" || r.Method == "PUT" || r.Method == "PATCH")
	_, err := w.WriteString("\r\n")
	return err
}

// writeField writes "name: value\r\n".
func writeField(w *bufio.Writer, name, value string) {
	w.WriteString(name)
	w.WriteString(": ")
	w.WriteString(value)
	w.WriteString("\r\n")
}

// writeFraming writes Transfer-Encoding or Content-Length. A zero length is
// written only when explicit is true.
func writeFraming(w *bufio.Writer, length int64, chunked, explicit bool) {
	switch {
	case chunked:
		w.WriteString("Transfer-Encoding: chunked\r\n")
	case length > 0 || (length == 0 && explicit):
		w.WriteString("Content-Length: ")
		w.Write(appendInt(w.AvailableBuffer(), length))
		w.WriteString("\r\n")
	}
}

// appendInt appends the decimal form of a non-negative n.
func appendInt(b []byte, n int64) []byte {
	var tmp [20]byte
	i := len(tmp)
	for {
		i--
		tmp[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			break
		}
	}
	return append(b, tmp[i:]...)
}
