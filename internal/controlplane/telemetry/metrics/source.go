package metrics

import (
	"context"
	"time"
)

// Source answers the one kind of question every metrics view is built
// from: sum by (labels) (rate(metric{matchers}[range])), at one time or at
// every step of a time range. The embedded Store and a real Prometheus
// (NewPrometheus) implement it, so the views computed from it (Querier)
// give the same JSON on both. Implementations are safe for concurrent use.
type Source interface {
	Rates(ctx context.Context, q RateQuery) ([]Vector, error)
}

// RateQuery is sum by (By) (rate(Metric{Matchers}[Range])) evaluated at
// End, or at every Step from Start to End when Step > 0.
type RateQuery struct {
	Metric   string            // full series name: istio_requests_total, ..._bucket
	Matchers map[string]string // label equality matchers
	By       []string          // labels to keep ("le" for buckets)
	Range    time.Duration
	Start    time.Time
	End      time.Time
	Step     time.Duration
}

// times are the evaluation times of the query, oldest first.
func (q RateQuery) times() []time.Time {
	if q.Step <= 0 || !q.Start.Before(q.End) {
		return []time.Time{q.End}
	}
	var ts []time.Time
	for t := q.Start; !t.After(q.End); t = t.Add(q.Step) {
		ts = append(ts, t)
	}
	return ts
}

// Vector is one group of a RateQuery's answer: its By labels and its value
// at each evaluation time (Present says whether it had one then).
type Vector struct {
	Labels  Labels
	Times   []time.Time
	Values  []float64
	Present []bool
}
