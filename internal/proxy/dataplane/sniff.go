package dataplane

import (
	"bufio"
	"bytes"
	"net"
	"net/http"
	"time"
)

// The application protocols Envoy's http_inspector reports, which filter
// chains match with application_protocols.
const (
	appHTTP1 = "http/1.1"
	appH2C   = "h2c"
)

// protocolDetectionTimeout bounds the wait for a client's first bytes on a
// port whose protocol is sniffed; then the connection is taken as TCP (a
// server-first protocol such as MySQL still works, a second late).
const protocolDetectionTimeout = time.Second

// h2PrefaceLine is the first line of the HTTP/2 client connection preface.
var h2PrefaceLine = []byte(h2Preface[:len("PRI * HTTP/2.0\r\n")])

// sniffApp peeks at a connection's first bytes, consuming nothing, and
// returns appH2C for the HTTP/2 preface, appHTTP1 for an HTTP/1.x request
// line, else "" (TCP, TLS or anything else). It reads until it can tell,
// at most the first line up to br's size, for protocolDetectionTimeout.
func sniffApp(conn net.Conn, br *bufio.Reader) string {
	_ = conn.SetReadDeadline(time.Now().Add(protocolDetectionTimeout))
	defer conn.SetReadDeadline(time.Time{})
	for n := 1; ; n = br.Buffered() + 1 {
		b, err := br.Peek(n)
		if app, done := classify(b); done {
			return app
		}
		if err != nil || n >= br.Size() {
			return ""
		}
	}
}

// classify decides from the first bytes of a connection whether it is
// HTTP/2, HTTP/1.x or neither; done is false while more bytes could tell.
func classify(b []byte) (app string, done bool) {
	if len(b) == 0 {
		return "", false
	}
	if bytes.HasPrefix(h2PrefaceLine, b) || bytes.HasPrefix(b, h2PrefaceLine) {
		if len(b) >= len(h2PrefaceLine) {
			return appH2C, true
		}
		return "", false
	}
	// An HTTP/1 request line: METHOD SP TARGET SP HTTP/1.x CRLF, the
	// method a token of letters.
	sp := bytes.IndexByte(b, ' ')
	method := b
	if sp >= 0 {
		method = b[:sp]
	}
	if len(method) == 0 || len(method) > 16 {
		return "", true
	}
	for _, c := range method {
		if c < 'A' || c > 'Z' {
			return "", true
		}
	}
	eol := bytes.IndexByte(b, '\n')
	if eol < 0 {
		return "", false
	}
	line := bytes.TrimSuffix(b[:eol], []byte("\r"))
	if bytes.HasSuffix(line, []byte(" HTTP/1.1")) || bytes.HasSuffix(line, []byte(" HTTP/1.0")) {
		return appHTTP1, true
	}
	return "", true
}

// appOf is the application protocol of a request served by net/http.
func appOf(r *http.Request) string {
	if r.ProtoMajor == 2 {
		return appH2C
	}
	return appHTTP1
}
