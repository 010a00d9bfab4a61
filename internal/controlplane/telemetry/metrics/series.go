package metrics

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Chart metrics of SeriesQuery.Metric.
const (
	MetricRequestRate     = "request_rate"     // lines: total, 4xx, 5xx (req/s)
	MetricRequestDuration = "request_duration" // lines: p50, p95, p99 (ms)
	MetricRequestSize     = "request_size"     // line: avg (bytes)
	MetricResponseSize    = "response_size"    // line: avg (bytes)
	MetricTCPSent         = "tcp_sent"         // line: total (bytes/s)
	MetricTCPReceived     = "tcp_received"     // line: total (bytes/s)
)

// ChartMetrics lists the metrics Series draws.
var ChartMetrics = []string{MetricRequestRate, MetricRequestDuration, MetricRequestSize,
	MetricResponseSize, MetricTCPSent, MetricTCPReceived}

// Directions of SeriesQuery.Direction.
const (
	Inbound  = "inbound"
	Outbound = "outbound"
)

// SeriesQuery asks for one chart: a workload's or a service's metric over
// the window ending now, one point per step.
type SeriesQuery struct {
	Workload, Service string // exactly one
	Namespace         string // "": any
	// Direction is Inbound (default: requests the workload or service
	// received, reporter=destination) or Outbound (requests the workload
	// sent, reporter=source; workloads only).
	Direction string
	Metric    string
	Window    time.Duration
	Step      time.Duration
}

// ErrBadQuery marks a query the caller got wrong (HTTP 400).
var ErrBadQuery = errors.New("bad query")

// Line is one line of a chart. Points are [Unix seconds, value]; a step
// without data has no point.
type Line struct {
	Name   string       `json:"name"`
	Points [][2]float64 `json:"points"`
}

// Chart is Series' answer.
type Chart struct {
	Metric string `json:"metric"`
	Unit   string `json:"unit"`
	Start  int64  `json:"start"` // Unix seconds
	End    int64  `json:"end"`
	Step   int64  `json:"step"` // seconds
	Lines  []Line `json:"lines"`
}

// chartRange is the rate() window of each chart point: a step, but at
// least a minute so that every point spans several scrapes.
func chartRange(step time.Duration) time.Duration { return max(step, time.Minute) }

func (sq SeriesQuery) matchers() (map[string]string, error) {
	switch {
	case (sq.Workload == "") == (sq.Service == ""):
		return nil, fmt.Errorf("%w: give exactly one of workload= and service=", ErrBadQuery)
	case sq.Direction != "" && sq.Direction != Inbound && sq.Direction != Outbound:
		return nil, fmt.Errorf("%w: direction %q: want inbound or outbound", ErrBadQuery, sq.Direction)
	case sq.Service != "" && sq.Direction == Outbound:
		return nil, fmt.Errorf("%w: a service has inbound traffic only", ErrBadQuery)
	case !slices.Contains(ChartMetrics, sq.Metric):
		return nil, fmt.Errorf("%w: metric %q: want one of %s", ErrBadQuery, sq.Metric, strings.Join(ChartMetrics, ", "))
	case sq.Window <= 0 || sq.Step <= 0:
		return nil, fmt.Errorf("%w: window and step must be positive", ErrBadQuery)
	case sq.Window/sq.Step > maxPoints:
		return nil, fmt.Errorf("%w: window/step gives more than %d points; use a larger step", ErrBadQuery, maxPoints)
	}
	m := map[string]string{}
	switch {
	case sq.Service != "":
		m["reporter"] = ReporterDestination
		m["destination_service_name"] = sq.Service
		if sq.Namespace != "" {
			m["destination_service_namespace"] = sq.Namespace
		}
	case sq.Direction == Outbound:
		m["reporter"] = ReporterSource
		m["source_workload"] = sq.Workload
		if sq.Namespace != "" {
			m["source_workload_namespace"] = sq.Namespace
		}
	default:
		m["reporter"] = ReporterDestination
		m["destination_workload"] = sq.Workload
		if sq.Namespace != "" {
			m["destination_workload_namespace"] = sq.Namespace
		}
	}
	return m, nil
}

// maxPoints bounds a chart's points per line.
const maxPoints = 1000

// Series returns one chart.
func (q *Querier) Series(ctx context.Context, sq SeriesQuery) (*Chart, error) {
	m, err := sq.matchers()
	if err != nil {
		return nil, err
	}
	end := q.now().Truncate(time.Second)
	start := end.Add(-sq.Window)
	rq := RateQuery{Matchers: m, Range: chartRange(sq.Step), Start: start, End: end, Step: sq.Step}
	times := rq.times()
	c := &Chart{Metric: sq.Metric, Start: start.Unix(), End: end.Unix(), Step: int64(sq.Step / time.Second), Lines: []Line{}}
	rates := func(metric string, by ...string) ([]Vector, error) {
		r := rq
		r.Metric, r.By = metric, by
		return q.src.Rates(ctx, r)
	}
	switch sq.Metric {
	case MetricRequestRate:
		c.Unit = "req/s"
		vecs, err := rates(RequestsTotal, "response_code")
		if err != nil {
			return nil, err
		}
		total, e4, e5 := newLine("total", times), newLine("4xx", times), newLine("5xx", times)
		for _, v := range vecs {
			total.add(v)
			switch {
			case strings.HasPrefix(v.Labels["response_code"], "4"):
				e4.add(v)
			case strings.HasPrefix(v.Labels["response_code"], "5"):
				e5.add(v)
			}
		}
		c.Lines = append(c.Lines, total.line(), e4.line(), e5.line())
	case MetricRequestDuration:
		c.Unit = "ms"
		vecs, err := rates(RequestDuration+"_bucket", "le")
		if err != nil {
			return nil, err
		}
		for _, qv := range []struct {
			name string
			q    float64
		}{{"p50", 0.5}, {"p95", 0.95}, {"p99", 0.99}} {
			c.Lines = append(c.Lines, quantileLine(qv.name, qv.q, times, vecs))
		}
	case MetricRequestSize, MetricResponseSize:
		c.Unit = "bytes"
		name := RequestBytes
		if sq.Metric == MetricResponseSize {
			name = ResponseBytes
		}
		sums, err := rates(name + "_sum")
		if err != nil {
			return nil, err
		}
		counts, err := rates(name + "_count")
		if err != nil {
			return nil, err
		}
		c.Lines = append(c.Lines, ratioLine("avg", times, sums, counts))
	case MetricTCPSent, MetricTCPReceived:
		c.Unit = "bytes/s"
		name := TCPSentBytes
		if sq.Metric == MetricTCPReceived {
			name = TCPReceivedBytes
		}
		vecs, err := rates(name)
		if err != nil {
			return nil, err
		}
		l := newLine("total", times)
		for _, v := range vecs {
			l.add(v)
		}
		c.Lines = append(c.Lines, l.line())
	}
	return c, nil
}

// lineSum sums vectors point by point.
type lineSum struct {
	name    string
	times   []time.Time
	vals    []float64
	present []bool
}

func newLine(name string, times []time.Time) *lineSum {
	return &lineSum{name: name, times: times, vals: make([]float64, len(times)), present: make([]bool, len(times))}
}

func (l *lineSum) add(v Vector) {
	for i := range l.times {
		if at(v, i) {
			l.vals[i] += v.Values[i]
			l.present[i] = true
		}
	}
}

func (l *lineSum) line() Line {
	out := Line{Name: l.name, Points: [][2]float64{}}
	for i, t := range l.times {
		if l.present[i] {
			out.Points = append(out.Points, [2]float64{float64(t.Unix()), l.vals[i]})
		}
	}
	return out
}

// at says whether v has a value at the i-th evaluation time.
func at(v Vector, i int) bool {
	return i < len(v.Values) && (v.Present == nil || (i < len(v.Present) && v.Present[i]))
}

func quantileLine(name string, q float64, times []time.Time, vecs []Vector) Line {
	out := Line{Name: name, Points: [][2]float64{}}
	for i, t := range times {
		var b []bucket
		for _, v := range vecs {
			le, ok := parseLe(v.Labels["le"])
			if ok && at(v, i) {
				b = append(b, bucket{le, v.Values[i]})
			}
		}
		if len(b) == 0 {
			continue
		}
		merged := map[float64]float64{}
		for _, x := range b {
			merged[x.upper] += x.count
		}
		b = b[:0]
		for le, c := range merged {
			b = append(b, bucket{le, c})
		}
		if v := histogramQuantile(q, b); !math.IsNaN(v) && !math.IsInf(v, 0) {
			out.Points = append(out.Points, [2]float64{float64(t.Unix()), v})
		}
	}
	return out
}

func ratioLine(name string, times []time.Time, num, den []Vector) Line {
	n, d := newLine("", times), newLine("", times)
	for _, v := range num {
		n.add(v)
	}
	for _, v := range den {
		d.add(v)
	}
	out := Line{Name: name, Points: [][2]float64{}}
	for i, t := range times {
		if n.present[i] && d.present[i] && d.vals[i] > 0 {
			out.Points = append(out.Points, [2]float64{float64(t.Unix()), n.vals[i] / d.vals[i]})
		}
	}
	return out
}
