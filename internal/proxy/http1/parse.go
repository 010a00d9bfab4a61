package http1

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// DefaultMaxHeaderBytes bounds a request or response head (start line and
// header fields) when no other limit is given.
const DefaultMaxHeaderBytes = 60 << 10

// ErrHeaderTooLarge is returned when a message head exceeds its limit;
// a server answers 431.
var ErrHeaderTooLarge = errors.New("http1: message head too large")

// ErrMalformed is wrapped by every error about invalid HTTP/1.x syntax or
// framing; a server answers 400.
var ErrMalformed = errors.New("http1: malformed message")

// malformed returns an error wrapping ErrMalformed.
func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// readHead reads a message head up to and including the empty line into
// *buf (reused) and returns it as one interned string, so every field of
// the parsed message shares it and reading costs no allocation. Leading empty lines are skipped
// (RFC 9112 section 2.2). io.EOF is returned only when nothing was read.
func readHead(br *bufio.Reader, buf *[]byte, limit int) (string, error) {
	if limit <= 0 {
		limit = DefaultMaxHeaderBytes
	}
	b := (*buf)[:0]
	lineStart := 0
	for {
		line, err := br.ReadSlice('\n')
		if len(b)+len(line) > limit {
			return "", ErrHeaderTooLarge
		}
		b = append(b, line...)
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			*buf = b
			if err == io.EOF && len(b) == 0 {
				return "", io.EOF
			}
			if err == io.EOF {
				return "", io.ErrUnexpectedEOF
			}
			return "", err
		}
		l := len(b) - lineStart
		if l == 1 || (l == 2 && b[lineStart] == '\r') {
			if lineStart == 0 { // empty line before the start line
				b = b[:0]
				continue
			}
			*buf = b
			return intern(b), nil
		}
		lineStart = len(b)
	}
}

// nextLine splits the first line off s, dropping its CRLF or LF.
func nextLine(s string) (line, rest string) {
	i := strings.IndexByte(s, '\n')
	if i < 0 {
		return s, ""
	}
	line, rest = s[:i], s[i+1:]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, rest
}

// parseFields parses header lines (the head after its start line) and
// appends them to h.
func parseFields(s string, h *Header) error {
	for {
		var line string
		line, s = nextLine(s)
		if line == "" {
			return nil
		}
		if line[0] == ' ' || line[0] == '\t' {
			return malformed("obsolete line folding")
		}
		i := strings.IndexByte(line, ':')
		if i <= 0 {
			return malformed("header line without a name and colon")
		}
		name := line[:i]
		if !isToken(name) {
			return malformed("invalid header name %q", name)
		}
		value := strings.Trim(line[i+1:], " \t")
		if !validValue(value) {
			return malformed("invalid value for header %q", name)
		}
		h.Add(name, value)
	}
}

// tokenTable marks the characters allowed in an RFC 9110 token.
var tokenTable = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// isToken reports whether s is a non-empty RFC 9110 token.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !tokenTable[s[i]] {
			return false
		}
	}
	return true
}

// validValue rejects control characters other than horizontal tab.
func validValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// parseProto parses "HTTP/1.x" and returns the minor version.
func parseProto(p string) (int, error) {
	if len(p) != 8 || !strings.HasPrefix(p, "HTTP/1.") || p[7] < '0' || p[7] > '9' {
		return 0, malformed("unsupported protocol version %q", p)
	}
	return int(p[7] - '0'), nil
}

// framing is the body framing found in a message's header fields.
type framing struct {
	length  int64 // -1: unknown (chunked or until close)
	chunked bool
	close   bool // Connection: close seen
	keep    bool // Connection: keep-alive seen
	upgrade bool // Connection: upgrade seen
}

// parseFraming reads Content-Length, Transfer-Encoding and Connection.
// Transfer-Encoding other than a final "chunked" is reported as teOther.
func parseFraming(h Header) (f framing, teOther bool, err error) {
	f.length = -1
	haveLength, haveTE := false, false
	for _, fd := range h {
		switch {
		case sameName(fd.Name, "content-length"):
			n, perr := parseLength(fd.Value)
			if perr != nil {
				return f, false, perr
			}
			if haveLength && n != f.length {
				return f, false, malformed("conflicting Content-Length values")
			}
			f.length, haveLength = n, true
		case sameName(fd.Name, "transfer-encoding"):
			haveTE = true
			f.chunked, teOther = lastCodingChunked(fd.Value, f.chunked, teOther)
		case sameName(fd.Name, "connection"):
			f.close = f.close || hasToken(fd.Value, "close")
			f.keep = f.keep || hasToken(fd.Value, "keep-alive")
			f.upgrade = f.upgrade || hasToken(fd.Value, "upgrade")
		}
	}
	if haveTE {
		if haveLength {
			return f, false, malformed("both Transfer-Encoding and Content-Length")
		}
		f.length = -1
	}
	return f, teOther, nil
}

// lastCodingChunked folds one Transfer-Encoding value into the state "is
// the final coding chunked" and "is there a coding after chunked or not
// chunked at all".
func lastCodingChunked(v string, chunked, other bool) (bool, bool) {
	for v != "" {
		var t string
		t, v, _ = strings.Cut(v, ",")
		t = strings.TrimSpace(t)
		if t == "" {
			continue
		}
		if chunked {
			other = true // a coding after chunked
		}
		chunked = strings.EqualFold(t, "chunked")
		if !chunked {
			other = true
		}
	}
	return chunked, other
}

// parseLength parses a Content-Length value.
func parseLength(v string) (int64, error) {
	if v == "" || len(v) > 18 {
		return 0, malformed("invalid Content-Length %q", v)
	}
	var n int64
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < '0' || c > '9' {
			return 0, malformed("invalid Content-Length %q", v)
		}
		n = n*10 + int64(c-'0')
	}
	return n, nil
}

// parseStatus parses a three-digit status code.
func parseStatus(s string) (int, error) {
	if len(s) != 3 || s[0] < '1' || s[0] > '9' {
		return 0, malformed("invalid status code %q", s)
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, malformed("invalid status code %q", s)
	}
	return n, nil
}
