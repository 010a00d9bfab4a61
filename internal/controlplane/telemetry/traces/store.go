// Package traces is the control plane's embedded trace backend: an OTLP
// receiver (gRPC and HTTP), an in-memory store bounded by span count and
// bytes, and a Jaeger-like JSON query API for the console and `weft traces`.
package traces

import (
	"container/list"
	"sort"
	"sync"
	"time"
)

// Default bounds of a Store.
const (
	DefaultMaxSpans = 50_000
	DefaultMaxBytes = 64 << 20
)

// StoreOptions bounds a Store; zero values take the defaults.
type StoreOptions struct {
	MaxSpans int
	MaxBytes int64
}

// Tag is a span or process attribute, typed as Jaeger's API types it:
// Type is "string", "bool", "int64" or "float64" and Value holds a string,
// bool, int64 or float64.
type Tag struct {
	Key   string `json:"key"`
	Type  string `json:"type"`
	Value any    `json:"value"`
}

// Process is the service that reported spans (an OTLP resource).
type Process struct {
	ServiceName string `json:"serviceName"`
	Tags        []Tag  `json:"tags"`
}

// Span is one stored span. Spans are immutable once added.
type Span struct {
	TraceID      string // 32 hex digits
	SpanID       string // 16 hex digits
	ParentSpanID string // "" for a root span
	Name         string
	Kind         string // server, client, producer, consumer, internal
	Start        time.Time
	Duration     time.Duration
	Tags         []Tag
	Process      *Process
	Error        bool // status error or tag error=true
}

// Trace is the spans of one trace held by the store, in start order.
type Trace struct {
	TraceID string
	Spans   []*Span
}

// TraceSummary describes a trace found by Find.
type TraceSummary struct {
	TraceID       string        `json:"traceID"`
	RootService   string        `json:"rootService"`
	RootOperation string        `json:"rootOperation"`
	Start         time.Time     `json:"start"`
	Duration      time.Duration `json:"duration"` // first start to last end
	Spans         int           `json:"spans"`
	Errors        int           `json:"errors"`
	Services      []string      `json:"services"`
}

// Query selects traces: a trace matches when one of its spans matches
// every set field (as Jaeger's search does).
type Query struct {
	Service   string
	Operation string
	// Tags match span tags or its process's tags by their string form
	// (http.status_code=500, error=true).
	Tags                     map[string]string
	MinDuration, MaxDuration time.Duration // 0: no bound
	Start, End               time.Time     // span start within; zero: no bound
	Limit                    int           // 0: all
}

// Store holds recent traces in memory, evicting whole oldest traces (by
// arrival of their first span) when it holds more than MaxSpans spans or
// about MaxBytes bytes. It is safe for concurrent use.
type Store struct {
	maxSpans int
	maxBytes int64

	mu     sync.RWMutex
	traces map[string]*entry
	order  *list.List // *entry, oldest first
	spans  int
	bytes  int64
	ops    map[string]map[string]int // service → operation → spans held
}

type entry struct {
	id    string
	spans []*Span
	bytes int64
	elem  *list.Element
}

// NewStore returns an empty store.
func NewStore(opts StoreOptions) *Store {
	if opts.MaxSpans <= 0 {
		opts.MaxSpans = DefaultMaxSpans
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	return &Store{
		maxSpans: opts.MaxSpans, maxBytes: opts.MaxBytes,
		traces: map[string]*entry{}, order: list.New(), ops: map[string]map[string]int{},
	}
}

// Add stores spans, then evicts oldest traces until the bounds hold.
func (s *Store) Add(spans []*Span) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sp := range spans {
		e := s.traces[sp.TraceID]
		if e == nil {
			e = &entry{id: sp.TraceID}
			e.elem = s.order.PushBack(e)
			s.traces[sp.TraceID] = e
		}
		n := spanBytes(sp)
		e.spans = append(e.spans, sp)
		e.bytes += n
		s.spans++
		s.bytes += n
		ops := s.ops[sp.Process.ServiceName]
		if ops == nil {
			ops = map[string]int{}
			s.ops[sp.Process.ServiceName] = ops
		}
		ops[sp.Name]++
	}
	for (s.spans > s.maxSpans || s.bytes > s.maxBytes) && s.order.Len() > 0 {
		s.evict(s.order.Front().Value.(*entry))
	}
}

func (s *Store) evict(e *entry) {
	s.order.Remove(e.elem)
	delete(s.traces, e.id)
	s.spans -= len(e.spans)
	s.bytes -= e.bytes
	for _, sp := range e.spans {
		ops := s.ops[sp.Process.ServiceName]
		if ops[sp.Name]--; ops[sp.Name] == 0 {
			delete(ops, sp.Name)
			if len(ops) == 0 {
				delete(s.ops, sp.Process.ServiceName)
			}
		}
	}
}

// spanOverhead approximates a Span's fixed memory (struct, slice headers,
// map and list bookkeeping).
const spanOverhead = 256

// spanBytes estimates the memory a span holds. The process is shared by
// the spans of one export and is not counted.
func spanBytes(sp *Span) int64 {
	n := spanOverhead + len(sp.TraceID) + len(sp.SpanID) + len(sp.ParentSpanID) + len(sp.Name) + len(sp.Kind)
	for _, t := range sp.Tags {
		n += 48 + len(t.Key)
		if v, ok := t.Value.(string); ok {
			n += len(v)
		}
	}
	return int64(n)
}

// Stats returns the spans, traces and estimated bytes held.
func (s *Store) Stats() (spans, traces int, bytes int64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.spans, len(s.traces), s.bytes
}

// Get returns the trace with that id (hex, case-insensitive).
func (s *Store) Get(traceID string) (*Trace, bool) {
	s.mu.RLock()
	e := s.traces[normalizeTraceID(traceID)]
	var t *Trace
	if e != nil {
		t = &Trace{TraceID: e.id, Spans: append([]*Span(nil), e.spans...)}
	}
	s.mu.RUnlock()
	if t == nil {
		return nil, false
	}
	sort.SliceStable(t.Spans, func(i, j int) bool { return t.Spans[i].Start.Before(t.Spans[j].Start) })
	return t, true
}

// Services returns the services that reported the spans held, sorted.
func (s *Store) Services() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, 0, len(s.ops))
	for svc := range s.ops {
		out = append(out, svc)
	}
	sort.Strings(out)
	return out
}

// Operations returns the span names of a service's spans held, sorted.
func (s *Store) Operations(service string) []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, 0, len(s.ops[service]))
	for op := range s.ops[service] {
		out = append(out, op)
	}
	sort.Strings(out)
	return out
}

// Find returns the traces matching q, most recent first.
func (s *Store) Find(q Query) []TraceSummary {
	var out []TraceSummary
	s.mu.RLock()
	for el := s.order.Back(); el != nil; el = el.Prev() {
		e := el.Value.(*entry)
		for _, sp := range e.spans {
			if q.matches(sp) {
				out = append(out, summarize(e.id, e.spans))
				break
			}
		}
	}
	s.mu.RUnlock()
	sort.SliceStable(out, func(i, j int) bool { return out[i].Start.After(out[j].Start) })
	if q.Limit > 0 && len(out) > q.Limit {
		out = out[:q.Limit]
	}
	return out
}

func (q *Query) matches(sp *Span) bool {
	switch {
	case q.Service != "" && sp.Process.ServiceName != q.Service,
		q.Operation != "" && sp.Name != q.Operation,
		q.MinDuration > 0 && sp.Duration < q.MinDuration,
		q.MaxDuration > 0 && sp.Duration > q.MaxDuration,
		!q.Start.IsZero() && sp.Start.Before(q.Start),
		!q.End.IsZero() && sp.Start.After(q.End):
		return false
	}
	for k, v := range q.Tags {
		if !hasTag(sp.Tags, k, v) && !hasTag(sp.Process.Tags, k, v) {
			return false
		}
	}
	return true
}

func hasTag(tags []Tag, key, value string) bool {
	for _, t := range tags {
		if t.Key == key && tagString(t) == value {
			return true
		}
	}
	return false
}

// summarize describes a trace; its root is the earliest span without a
// parent in the trace (or the earliest span if every parent is missing).
func summarize(id string, spans []*Span) TraceSummary {
	ts := TraceSummary{TraceID: id, Spans: len(spans)}
	ids := make(map[string]bool, len(spans))
	for _, sp := range spans {
		ids[sp.SpanID] = true
	}
	var root, first *Span
	var end time.Time
	services := map[string]bool{}
	for _, sp := range spans {
		if ts.Start.IsZero() || sp.Start.Before(ts.Start) {
			ts.Start = sp.Start
		}
		if e := sp.Start.Add(sp.Duration); e.After(end) {
			end = e
		}
		if sp.Error {
			ts.Errors++
		}
		services[sp.Process.ServiceName] = true
		isRoot := sp.ParentSpanID == "" || !ids[sp.ParentSpanID]
		if first == nil || sp.Start.Before(first.Start) {
			first = sp
		}
		if isRoot && (root == nil || sp.Start.Before(root.Start)) {
			root = sp
		}
	}
	if root == nil {
		root = first
	}
	if root != nil {
		ts.RootService, ts.RootOperation = root.Process.ServiceName, root.Name
	}
	ts.Duration = end.Sub(ts.Start)
	for svc := range services {
		ts.Services = append(ts.Services, svc)
	}
	sort.Strings(ts.Services)
	return ts
}
