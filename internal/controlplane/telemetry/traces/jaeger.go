package traces

import (
	"encoding/json"
	"strconv"
)

// Jaeger's query API types (github.com/jaegertracing/jaeger/model/json), so
// that a Jaeger-like UI reads the store.

// JaegerTrace is a trace as Jaeger's API returns it.
type JaegerTrace struct {
	TraceID   string                   `json:"traceID"`
	Spans     []JaegerSpan             `json:"spans"`
	Processes map[string]JaegerProcess `json:"processes"`
	Warnings  []string                 `json:"warnings"`
}

// JaegerProcess is the service that reported spans.
type JaegerProcess = Process

// JaegerReference links a span to its parent.
type JaegerReference struct {
	RefType string `json:"refType"` // CHILD_OF
	TraceID string `json:"traceID"`
	SpanID  string `json:"spanID"`
}

// JaegerSpan is a span as Jaeger's API returns it; times are in µs.
type JaegerSpan struct {
	TraceID       string            `json:"traceID"`
	SpanID        string            `json:"spanID"`
	ParentSpanID  string            `json:"parentSpanID,omitempty"`
	OperationName string            `json:"operationName"`
	References    []JaegerReference `json:"references"`
	Flags         int               `json:"flags"`
	StartTime     int64             `json:"startTime"`
	Duration      int64             `json:"duration"`
	Tags          []Tag             `json:"tags"`
	Logs          []json.RawMessage `json:"logs"`
	ProcessID     string            `json:"processID"`
	Warnings      []string          `json:"warnings"`
}

// Jaeger returns the trace in Jaeger's API shape. Processes are numbered
// p1, p2... in order of first appearance.
func (t *Trace) Jaeger() JaegerTrace {
	jt := JaegerTrace{TraceID: t.TraceID, Spans: make([]JaegerSpan, 0, len(t.Spans)), Processes: map[string]JaegerProcess{}}
	// Each export has its own *Process: spans of one service share a
	// process id when their process tags are the same.
	pids := map[string]string{}
	for _, sp := range t.Spans {
		key, _ := json.Marshal(sp.Process)
		pid, ok := pids[string(key)]
		if !ok {
			pid = "p" + strconv.Itoa(len(pids)+1)
			pids[string(key)] = pid
			p := *sp.Process
			if p.Tags == nil {
				p.Tags = []Tag{}
			}
			jt.Processes[pid] = p
		}
		js := JaegerSpan{
			TraceID: sp.TraceID, SpanID: sp.SpanID, ParentSpanID: sp.ParentSpanID,
			OperationName: sp.Name, References: []JaegerReference{}, Flags: 1,
			StartTime: sp.Start.UnixMicro(), Duration: sp.Duration.Microseconds(),
			Tags: sp.Tags, Logs: []json.RawMessage{}, ProcessID: pid,
		}
		if js.Tags == nil {
			js.Tags = []Tag{}
		}
		if sp.ParentSpanID != "" {
			js.References = append(js.References, JaegerReference{RefType: "CHILD_OF", TraceID: sp.TraceID, SpanID: sp.ParentSpanID})
		}
		jt.Spans = append(jt.Spans, js)
	}
	return jt
}
