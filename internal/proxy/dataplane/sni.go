package dataplane

import (
	"bufio"
	"errors"
	"net"
	"time"
)

// errNotTLS: the connection does not start with a TLS ClientHello.
var errNotTLS = errors.New("not a TLS ClientHello")

// maxHello bounds how much of a ClientHello is read to find its SNI.
const maxHello = 16 << 10

// peekSNI reads the server name of a TLS ClientHello at the start of br
// without consuming it, as Envoy's tls_inspector does. It returns "" and
// no error for a ClientHello without SNI.
func peekSNI(br *bufio.Reader) (string, error) {
	hdr, err := br.Peek(5)
	if err != nil {
		return "", err
	}
	if hdr[0] != 0x16 || hdr[1] != 3 { // handshake record, TLS 1.x
		return "", errNotTLS
	}
	n := int(hdr[3])<<8 | int(hdr[4])
	if n > maxHello || n < 4 {
		return "", errNotTLS
	}
	rec, err := br.Peek(5 + n)
	if err != nil {
		return "", err
	}
	return helloSNI(rec[5:])
}

// helloSNI parses a handshake message holding a ClientHello.
func helloSNI(b []byte) (string, error) {
	if len(b) < 4 || b[0] != 1 { // client_hello
		return "", errNotTLS
	}
	msgLen := int(b[1])<<16 | int(b[2])<<8 | int(b[3])
	b = b[4:]
	if msgLen < len(b) {
		b = b[:msgLen]
	}
	// version (2), random (32)
	if len(b) < 34 {
		return "", errNotTLS
	}
	b = b[34:]
	skip := func(lenBytes int) bool {
		if len(b) < lenBytes {
			return false
		}
		n := 0
		for i := range lenBytes {
			n = n<<8 | int(b[i])
		}
		if len(b) < lenBytes+n {
			return false
		}
		b = b[lenBytes+n:]
		return true
	}
	if !skip(1) || !skip(2) || !skip(1) { // session id, cipher suites, compression methods
		return "", errNotTLS
	}
	if len(b) < 2 {
		return "", nil // no extensions
	}
	extLen := int(b[0])<<8 | int(b[1])
	b = b[2:]
	if len(b) > extLen {
		b = b[:extLen]
	}
	for len(b) >= 4 {
		typ, n := int(b[0])<<8|int(b[1]), int(b[2])<<8|int(b[3])
		b = b[4:]
		if len(b) < n {
			return "", errNotTLS
		}
		ext := b[:n]
		b = b[n:]
		if typ != 0 { // server_name
			continue
		}
		if len(ext) < 2 {
			return "", errNotTLS
		}
		list := ext[2:]
		for len(list) >= 3 {
			nameType, l := list[0], int(list[1])<<8|int(list[2])
			list = list[3:]
			if len(list) < l {
				return "", errNotTLS
			}
			if nameType == 0 {
				return string(list[:l]), nil
			}
			list = list[l:]
		}
	}
	return "", nil
}

// sniTimeout bounds the wait for a TLS client's first flight.
const sniTimeout = 10 * time.Second

// chainForConn picks the filter chain of a connection to port: by its SNI
// when the listener inspects TLS, by the application protocol its first
// bytes show when it inspects HTTP (peeking br, consuming nothing).
func (l *rlistener) chainForConn(port uint16, conn net.Conn, br *bufio.Reader) *rchain {
	if br == nil || !l.tlsInspector && !l.httpInspector {
		return l.chain(port)
	}
	var sni, app string
	if l.tlsInspector {
		_ = conn.SetReadDeadline(time.Now().Add(sniTimeout))
		sni, _ = peekSNI(br)
		_ = conn.SetReadDeadline(time.Time{})
	}
	if l.httpInspector && sni == "" {
		app = sniffApp(conn, br)
	}
	return l.chainFor(port, sni, app)
}
