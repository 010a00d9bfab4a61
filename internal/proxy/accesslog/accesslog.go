// Package accesslog writes a proxy's access log: one JSON object per
// request or TCP connection with Envoy's fields (as Istio's JSON access log
// format names them), kept in a bounded ring for `weft logs` and optionally
// copied to a writer.
package accesslog

import (
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/weft-mesh/weft/internal/xdsmeta"
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

// Logger keeps recent entries and fans their lines out to followers. It
// is safe for concurrent use; a nil *Logger discards everything.
//
// The ring keeps entries, not lines: an entry is formatted only when
// someone reads it (Tail), or at once when there is an Out or a follower,
// so a proxy whose log nobody reads spends no time formatting it.
type Logger struct {
	mu        sync.Mutex
	ring      []record
	next      int
	full      bool
	out       io.Writer
	followers map[chan []byte]struct{}
	// eager is set while lines must be formatted as they are logged (an
	// Out or a follower).
	eager atomic.Bool
}

// record is one entry of the ring with the format it is to be written in.
type record struct {
	Entry
	format Format
}

// New returns a Logger.
func New(opts Options) *Logger {
	if opts.Lines <= 0 {
		opts.Lines = 1000
	}
	l := &Logger{ring: make([]record, opts.Lines), out: opts.Out, followers: map[chan []byte]struct{}{}}
	l.eager.Store(opts.Out != nil)
	return l
}

var bufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// Log records e in Istio's default format.
func (l *Logger) Log(e *Entry) { l.LogFormat(e, DefaultFormat) }

// LogFormat records e with the keys of f. The entry's strings are kept as
// they are until the ring drops it, so they must not change afterwards.
func (l *Logger) LogFormat(e *Entry, f Format) {
	if l == nil {
		return
	}
	if !l.eager.Load() {
		l.mu.Lock()
		l.store(e, f)
		l.mu.Unlock()
		return
	}
	bp := bufs.Get().(*[]byte)
	line := e.AppendFormat((*bp)[:0], f)
	line = append(line, '\n')
	l.mu.Lock()
	l.store(e, f)
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

// store puts e in the ring; l.mu is held.
func (l *Logger) store(e *Entry, f Format) {
	l.ring[l.next] = record{Entry: *e, format: f}
	l.next++
	if l.next == len(l.ring) {
		l.next, l.full = 0, true
	}
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
		r := &l.ring[idx]
		out = append(out, append(r.AppendFormat(nil, r.format), '\n'))
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
	l.eager.Store(true)
	l.mu.Unlock()
	return ch, func() {
		l.mu.Lock()
		delete(l.followers, ch)
		l.eager.Store(l.out != nil || len(l.followers) > 0)
		l.mu.Unlock()
	}
}

// Operator is one of Envoy's command operators weft can fill in.
type Operator uint8

// The operators weft's access log understands.
const (
	OpStartTime Operator = iota + 1
	OpMethod
	OpPath
	OpProtocol
	OpResponseCode
	OpResponseFlags
	OpResponseCodeDetails
	OpBytesReceived
	OpBytesSent
	OpDuration
	OpUpstreamServiceTime
	OpUpstreamHost
	OpUpstreamCluster
	OpUpstreamLocalAddress
	OpUpstreamTransportFailure
	OpRouteName
	OpXForwardedFor
	OpUserAgent
	OpRequestID
	OpTraceID
	OpAuthority
	OpDownstreamRemote
	OpDownstreamLocal
	OpRequestedServerName
)

var operators = map[string]Operator{
	"%START_TIME%": OpStartTime, "%REQ(:METHOD)%": OpMethod, "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%": OpPath, "%REQ(:PATH)%": OpPath,
	"%PROTOCOL%": OpProtocol, "%RESPONSE_CODE%": OpResponseCode, "%RESPONSE_FLAGS%": OpResponseFlags,
	"%RESPONSE_CODE_DETAILS%": OpResponseCodeDetails, "%BYTES_RECEIVED%": OpBytesReceived, "%BYTES_SENT%": OpBytesSent,
	"%DURATION%": OpDuration, "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%": OpUpstreamServiceTime, "%UPSTREAM_HOST%": OpUpstreamHost,
	"%UPSTREAM_CLUSTER%": OpUpstreamCluster, "%UPSTREAM_LOCAL_ADDRESS%": OpUpstreamLocalAddress,
	"%UPSTREAM_TRANSPORT_FAILURE_REASON%": OpUpstreamTransportFailure, "%ROUTE_NAME%": OpRouteName,
	"%REQ(X-FORWARDED-FOR)%": OpXForwardedFor, "%REQ(USER-AGENT)%": OpUserAgent, "%REQ(X-REQUEST-ID)%": OpRequestID,
	"%TRACE_ID%": OpTraceID, "%REQ(:AUTHORITY)%": OpAuthority, "%DOWNSTREAM_REMOTE_ADDRESS%": OpDownstreamRemote,
	"%DOWNSTREAM_LOCAL_ADDRESS%": OpDownstreamLocal, "%REQUESTED_SERVER_NAME%": OpRequestedServerName,
}

// Field is one key of a JSON log format and the operator that fills it.
type Field struct {
	Key string
	Op  Operator
	// prefix is `"key":` already encoded (set by NewFormat).
	prefix string
}

// NewFormat returns a format with its keys encoded once.
func NewFormat(fields []Field) Format {
	f := make(Format, len(fields))
	for i, fl := range fields {
		fl.prefix = string(quote(nil, fl.Key)) + ":"
		f[i] = fl
	}
	return f
}

// Format is a JSON access log format: keys in order, each with its operator.
type Format []Field

// ParseOperator reads an Envoy command operator such as "%RESPONSE_CODE%".
func ParseOperator(s string) (Operator, error) {
	op, ok := operators[s]
	if !ok {
		return 0, fmt.Errorf("command operator %q is not supported by weft's access log", s)
	}
	return op, nil
}

// DefaultFormat is Istio's JSON access log format (xdsmeta.IstioAccessLogFormat).
var DefaultFormat = func() Format {
	var fields []Field
	for _, kv := range xdsmeta.IstioAccessLogFormat {
		op, err := ParseOperator(kv[1])
		if err != nil {
			panic(err) // the list and the operators are ours: a bug
		}
		fields = append(fields, Field{Key: kv[0], Op: op})
	}
	return NewFormat(fields)
}()

// AppendJSON appends e as one JSON object in Istio's default format.
func (e *Entry) AppendJSON(b []byte) []byte { return e.AppendFormat(b, DefaultFormat) }

// AppendFormat appends e as one JSON object with the keys of f.
func (e *Entry) AppendFormat(b []byte, f Format) []byte {
	b = append(b, '{')
	for i, fl := range f {
		if i > 0 {
			b = append(b, ',')
		}
		if fl.prefix != "" {
			b = append(b, fl.prefix...)
		} else {
			b = quote(b, fl.Key)
			b = append(b, ':')
		}
		b = e.appendValue(b, fl.Op)
	}
	return append(b, '}')
}

func (e *Entry) appendValue(b []byte, op Operator) []byte {
	s := func(v string) []byte { return appendString(b, v) }
	switch op {
	case OpStartTime:
		b = append(b, '"')
		b = e.StartTime.UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z")
		return append(b, '"')
	case OpMethod:
		return s(e.Method)
	case OpPath:
		return s(e.Path)
	case OpProtocol:
		return s(e.Protocol)
	case OpResponseCode:
		return strconv.AppendInt(b, int64(e.ResponseCode), 10)
	case OpResponseFlags:
		if e.ResponseFlags == "" {
			return quote(b, "-")
		}
		return quote(b, e.ResponseFlags)
	case OpResponseCodeDetails:
		return s(e.ResponseCodeDetail)
	case OpBytesReceived:
		return strconv.AppendInt(b, e.BytesReceived, 10)
	case OpBytesSent:
		return strconv.AppendInt(b, e.BytesSent, 10)
	case OpDuration:
		return strconv.AppendInt(b, e.Duration.Milliseconds(), 10)
	case OpUpstreamServiceTime:
		if e.UpstreamTime < 0 || e.UpstreamHost == "" {
			return append(b, "null"...)
		}
		b = append(b, '"')
		b = strconv.AppendInt(b, e.UpstreamTime.Milliseconds(), 10)
		return append(b, '"')
	case OpUpstreamHost:
		return s(e.UpstreamHost)
	case OpUpstreamCluster:
		return s(e.UpstreamCluster)
	case OpUpstreamLocalAddress:
		return s(e.UpstreamLocal)
	case OpUpstreamTransportFailure:
		return s(e.UpstreamFailure)
	case OpRouteName:
		return s(e.RouteName)
	case OpXForwardedFor:
		return s(e.XForwardedFor)
	case OpUserAgent:
		return s(e.UserAgent)
	case OpRequestID:
		return s(e.RequestID)
	case OpTraceID:
		return s(e.TraceID)
	case OpAuthority:
		return s(e.Authority)
	case OpDownstreamRemote:
		return s(e.DownstreamRemote)
	case OpDownstreamLocal:
		return s(e.DownstreamLocal)
	case OpRequestedServerName:
		return s(e.RequestedServer)
	}
	return append(b, "null"...)
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

// appendString appends v as a JSON string, or null when empty.
func appendString(b []byte, v string) []byte {
	if v == "" {
		return append(b, "null"...)
	}
	return quote(b, v)
}
