// Package accesslog writes a proxy's access log: one JSON object per
// request or TCP connection with Envoy's fields (as Istio's JSON access log
// format names them), kept in a bounded ring for `weft logs` and optionally
// copied to a writer.
package accesslog

import (
	"io"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// Entry is one access log record. Zero-valued fields are written as null,
// as Envoy writes "-" fields in JSON format.
type Entry struct {
	StartTime          time.Time
	Method             string
	Path               string
	Protocol           string // HTTP/1.1, HTTP/2, or "" for TCP
	ResponseCode       int
	ResponseFlags      string
	ResponseCodeDetail string
	BytesReceived      int64
	BytesSent          int64
	Duration           time.Duration
	UpstreamTime       time.Duration // x-envoy-upstream-service-time (-1: none)
	UpstreamHost       string
	UpstreamCluster    string
	RouteName          string
	RequestID          string
	TraceID            string
	Authority          string
	UserAgent          string
	XForwardedFor      string
	DownstreamRemote   string
	DownstreamLocal    string
	UpstreamLocal      string
	UpstreamFailure    string
	RequestedServer    string
}

// Options configure a Logger.
type Options struct {
	// Lines is how many recent lines the ring keeps (default 1000).
	Lines int
	// Out, if set, receives every line too (e.g. the proxy's stdout).
	Out io.Writer
}

// Logger keeps recent lines and fans them out to followers. It is safe for
// concurrent use; a nil *Logger discards everything.
type Logger struct {
	mu        sync.Mutex
	ring      [][]byte
	next      int
	full      bool
	out       io.Writer
	followers map[chan []byte]struct{}
	seq       uint64
}

// New returns a Logger.
func New(opts Options) *Logger {
	if opts.Lines <= 0 {
		opts.Lines = 1000
	}
	return &Logger{ring: make([][]byte, opts.Lines), out: opts.Out, followers: map[chan []byte]struct{}{}}
}

var bufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// Log records e.
func (l *Logger) Log(e *Entry) {
	if l == nil {
		return
	}
	bp := bufs.Get().(*[]byte)
	line := e.AppendJSON((*bp)[:0])
	line = append(line, '\n')
	l.mu.Lock()
	slot := l.ring[l.next]
	l.ring[l.next] = append(slot[:0], line...)
	l.next++
	if l.next == len(l.ring) {
		l.next, l.full = 0, true
	}
	if l.out != nil {
		_, _ = l.out.Write(line)
	}
	for ch := range l.followers {
		select {
		case ch <- append([]byte(nil), line...):
		default: // a slow follower misses lines rather than slowing traffic
		}
	}
	l.mu.Unlock()
	*bp = line
	bufs.Put(bp)
}

// Tail returns up to n of the most recent lines, oldest first (n <= 0: all kept).
func (l *Logger) Tail(n int) [][]byte {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var out [][]byte
	count := l.next
	if l.full {
		count = len(l.ring)
	}
	if n <= 0 || n > count {
		n = count
	}
	for i := count - n; i < count; i++ {
		idx := i
		if l.full {
			idx = (l.next + i) % len(l.ring)
		}
		out = append(out, append([]byte(nil), l.ring[idx]...))
	}
	return out
}

// Follow returns a channel receiving every new line until stop is called.
func (l *Logger) Follow() (lines <-chan []byte, stop func()) {
	ch := make(chan []byte, 256)
	if l == nil {
		return ch, func() {}
	}
	l.mu.Lock()
	l.followers[ch] = struct{}{}
	l.mu.Unlock()
	return ch, func() {
		l.mu.Lock()
		delete(l.followers, ch)
		l.mu.Unlock()
	}
}

// AppendJSON appends e as one JSON object, with Istio's JSON access log keys.
func (e *Entry) AppendJSON(b []byte) []byte {
	b = append(b, `{"start_time":"`...)
	b = e.StartTime.UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z")
	b = append(b, '"')
	b = str(b, "method", e.Method)
	b = str(b, "path", e.Path)
	b = str(b, "protocol", e.Protocol)
	b = append(b, `,"response_code":`...)
	b = strconv.AppendInt(b, int64(e.ResponseCode), 10)
	flags := e.ResponseFlags
	if flags == "" {
		flags = "-"
	}
	b = str(b, "response_flags", flags)
	b = str(b, "response_code_details", e.ResponseCodeDetail)
	b = append(b, `,"bytes_received":`...)
	b = strconv.AppendInt(b, e.BytesReceived, 10)
	b = append(b, `,"bytes_sent":`...)
	b = strconv.AppendInt(b, e.BytesSent, 10)
	b = append(b, `,"duration":`...)
	b = strconv.AppendInt(b, e.Duration.Milliseconds(), 10)
	b = append(b, `,"upstream_service_time":`...)
	if e.UpstreamTime >= 0 && e.UpstreamHost != "" {
		b = append(b, '"')
		b = strconv.AppendInt(b, e.UpstreamTime.Milliseconds(), 10)
		b = append(b, '"')
	} else {
		b = append(b, "null"...)
	}
	b = str(b, "upstream_host", e.UpstreamHost)
	b = str(b, "upstream_cluster", e.UpstreamCluster)
	b = str(b, "upstream_local_address", e.UpstreamLocal)
	b = str(b, "upstream_transport_failure_reason", e.UpstreamFailure)
	b = str(b, "route_name", e.RouteName)
	b = str(b, "x_forwarded_for", e.XForwardedFor)
	b = str(b, "user_agent", e.UserAgent)
	b = str(b, "request_id", e.RequestID)
	b = str(b, "trace_id", e.TraceID)
	b = str(b, "authority", e.Authority)
	b = str(b, "downstream_remote_address", e.DownstreamRemote)
	b = str(b, "downstream_local_address", e.DownstreamLocal)
	b = str(b, "requested_server_name", e.RequestedServer)
	return append(b, '}')
}

// str appends ,"key":"value" (null when empty).
func str(b []byte, key, v string) []byte {
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, `":`...)
	if v == "" {
		return append(b, "null"...)
	}
	return quote(b, v)
}

const hexDigits = "0123456789abcdef"

// quote appends v as a JSON string, escaping what JSON requires and
// replacing invalid UTF-8.
func quote(b []byte, v string) []byte {
	b = append(b, '"')
	for i := 0; i < len(v); {
		c := v[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(v[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, v[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
