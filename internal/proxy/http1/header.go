// Package http1 is weft's HTTP/1.1 forwarding engine: a request and response
// codec that reuses its storage, body framing (content-length, chunked with
// trailers, read-until-close), a pool of keep-alive upstream connections and
// Serve, the keep-alive loop of one downstream connection.
//
// Serve runs everything for a connection on the caller's goroutine: it reads
// a request, asks a RouteFunc where it goes, checks out a pooled upstream
// connection synchronously, streams the request and the response through
// pooled bufio buffers and returns the upstream connection to the pool. No
// goroutine is started per request and no net/http Header map is built.
package http1

import "strings"

// Field is one header line: a name as received (any case) and its value
// without surrounding whitespace.
type Field struct {
	Name  string
	Value string
}

// Header is an ordered list of header fields. Names compare
// case-insensitively. A Header is not safe for concurrent use.
type Header []Field

// sameName compares field names case-insensitively. Names are tokens
// (ASCII), so names of different lengths never match and need no folding.
func sameName(a, b string) bool { return len(a) == len(b) && strings.EqualFold(a, b) }

// Get returns the value of the first field named name, or "".
func (h Header) Get(name string) string {
	for i := range h {
		if sameName(h[i].Name, name) {
			return h[i].Value
		}
	}
	return ""
}

// Lookup returns the value of the first field named name and whether it exists.
func (h Header) Lookup(name string) (string, bool) {
	for i := range h {
		if sameName(h[i].Name, name) {
			return h[i].Value, true
		}
	}
	return "", false
}

// Has reports whether a field named name exists.
func (h Header) Has(name string) bool {
	_, ok := h.Lookup(name)
	return ok
}

// Values appends the values of every field named name to dst and returns it.
func (h Header) Values(dst []string, name string) []string {
	for i := range h {
		if sameName(h[i].Name, name) {
			dst = append(dst, h[i].Value)
		}
	}
	return dst
}

// Add appends a field.
func (h *Header) Add(name, value string) {
	*h = append(*h, Field{Name: name, Value: value})
}

// Set replaces the value of the first field named name and removes the
// others, or appends the field when there is none.
func (h *Header) Set(name, value string) {
	s := *h
	for i := range s {
		if sameName(s[i].Name, name) {
			s[i].Value = value
			*h = append(s[:i+1], deleteName(s[i+1:], name)...)
			return
		}
	}
	*h = append(s, Field{Name: name, Value: value})
}

// Del removes every field named name.
func (h *Header) Del(name string) {
	*h = deleteName(*h, name)
}

// deleteName removes the fields named name in place.
func deleteName(s Header, name string) Header {
	out := s[:0]
	for _, f := range s {
		if !sameName(f.Name, name) {
			out = append(out, f)
		}
	}
	clear(s[len(out):])
	return out
}

// hasToken reports whether the comma-separated list v contains token,
// case-insensitively.
func hasToken(v, token string) bool {
	for v != "" {
		var t string
		t, v, _ = strings.Cut(v, ",")
		if strings.EqualFold(strings.TrimSpace(t), token) {
			return true
		}
	}
	return false
}

// isHopByHop reports whether a field is connection-specific and must not be
// forwarded as is (RFC 9110 section 7.6.1). Content-Length and
// Transfer-Encoding are included: the writer emits its own framing.
func isHopByHop(name string) bool {
	switch len(name) {
	case 2:
		return strings.EqualFold(name, "te")
	case 7:
		return strings.EqualFold(name, "upgrade") || strings.EqualFold(name, "trailer")
	case 10:
		return strings.EqualFold(name, "connection") || strings.EqualFold(name, "keep-alive")
	case 14:
		return strings.EqualFold(name, "content-length")
	case 16:
		return strings.EqualFold(name, "proxy-connection")
	case 17:
		return strings.EqualFold(name, "transfer-encoding")
	case 19:
		return strings.EqualFold(name, "proxy-authorization")
	}
	return false
}
