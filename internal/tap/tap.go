// Package tap streams a proxy's live exchanges to an operator (`weft tap`,
// as Linkerd's `viz tap`). A proxy publishes each finished exchange to its
// Hub only while someone is subscribed: with no tap attached the data plane
// pays one atomic load. Filters run in the proxy, so a tap sends only what
// matches. An Event holds no request header except the pseudo-headers
// (method, authority, path) and the ids weft sets, so credentials carried
// in headers (authorization, cookie) never leave the proxy.
//
// The package is shared by the proxy (Hub, Verify) and the control plane
// (Sign, Event, Filter), which never import each other.
package tap

import (
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Directions of an exchange, as the proxy saw it.
const (
	Inbound  = "inbound"
	Outbound = "outbound"
)

// Event is one exchange seen by a proxy.
type Event struct {
	Time time.Time `json:"time"`
	// Proxy names the proxy that saw it (NAME.NAMESPACE; set by the
	// control plane when it merges the streams of several proxies).
	Proxy       string `json:"proxy,omitempty"`
	Direction   string `json:"direction"`
	Source      string `json:"source"`
	Destination string `json:"destination"`
	Method      string `json:"method,omitempty"`
	Authority   string `json:"authority,omitempty"`
	Path        string `json:"path,omitempty"`
	Status      int    `json:"status"`
	// ResponseFlags are Envoy's (UH, NR, ...); empty: none.
	ResponseFlags   string  `json:"responseFlags,omitempty"`
	LatencyMillis   float64 `json:"latencyMs"`
	Route           string  `json:"route,omitempty"`
	UpstreamHost    string  `json:"upstreamHost,omitempty"`
	UpstreamCluster string  `json:"upstreamCluster,omitempty"`
	TraceID         string  `json:"traceId,omitempty"`
	RequestID       string  `json:"requestId,omitempty"`
	// Error, in a merged stream, says a proxy (Proxy) could not be tapped;
	// such a line carries no exchange.
	Error string `json:"error,omitempty"`
}

// Filter selects exchanges; an empty field matches everything.
type Filter struct {
	// PathPrefix matches the start of the request's path.
	PathPrefix string
	// Method matches the request's method (case-insensitive).
	Method string
	// Authority matches the request's authority, with or without its port.
	Authority string
}

// Match reports whether e passes f.
func (f Filter) Match(e *Event) bool {
	if f.PathPrefix != "" && !strings.HasPrefix(e.Path, f.PathPrefix) {
		return false
	}
	if f.Method != "" && !strings.EqualFold(f.Method, e.Method) {
		return false
	}
	if f.Authority != "" && !strings.EqualFold(f.Authority, e.Authority) {
		host := e.Authority
		if i := strings.LastIndexByte(host, ':'); i > 0 && !strings.HasSuffix(host, "]") {
			host = host[:i]
		}
		if !strings.EqualFold(f.Authority, host) {
			return false
		}
	}
	return true
}

// Query returns f (and max, when positive) as URL query parameters.
func (f Filter) Query(max int) url.Values {
	q := url.Values{}
	if f.PathPrefix != "" {
		q.Set("path", f.PathPrefix)
	}
	if f.Method != "" {
		q.Set("method", f.Method)
	}
	if f.Authority != "" {
		q.Set("authority", f.Authority)
	}
	if max > 0 {
		q.Set("max", strconv.Itoa(max))
	}
	return q
}

// FilterFrom reads a filter from the query parameters Query writes.
func FilterFrom(q url.Values) Filter {
	return Filter{PathPrefix: q.Get("path"), Method: q.Get("method"), Authority: q.Get("authority")}
}

// Hub fans a proxy's exchanges out to its taps. Its zero value is ready to
// use and it is safe for concurrent use; a nil *Hub is never active.
type Hub struct {
	// active counts the subscribers: the hot path reads only this.
	active atomic.Int32
	mu     sync.Mutex
	subs   map[*subscriber]struct{}
}

type subscriber struct {
	filter Filter
	ch     chan Event
	// dropped counts events a slow tap missed.
	dropped atomic.Int64
}

// Active reports whether any tap is attached: the data plane builds an
// Event only when it is.
func (h *Hub) Active() bool { return h != nil && h.active.Load() > 0 }

// Publish hands e to every tap whose filter it matches. A tap that is not
// reading misses events rather than slowing traffic.
func (h *Hub) Publish(e *Event) {
	if !h.Active() {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		if !s.filter.Match(e) {
			continue
		}
		select {
		case s.ch <- *e:
		default:
			s.dropped.Add(1)
		}
	}
}

// Subscribe attaches a tap with filter f: its channel receives matching
// events until stop is called; dropped says how many it missed.
func (h *Hub) Subscribe(f Filter) (events <-chan Event, dropped func() int64, stop func()) {
	s := &subscriber{filter: f, ch: make(chan Event, 256)}
	h.mu.Lock()
	if h.subs == nil {
		h.subs = map[*subscriber]struct{}{}
	}
	h.subs[s] = struct{}{}
	h.active.Add(1)
	h.mu.Unlock()
	var once sync.Once
	return s.ch, s.dropped.Load, func() {
		once.Do(func() {
			h.mu.Lock()
			delete(h.subs, s)
			h.active.Add(-1)
			h.mu.Unlock()
		})
	}
}
