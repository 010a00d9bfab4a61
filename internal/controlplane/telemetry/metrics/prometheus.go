package metrics

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Prometheus is a Source that asks a real Prometheus (which scrapes the
// proxies itself, see Mount's /api/v1/prometheus/targets) through its HTTP
// API: /api/v1/query for one time, /api/v1/query_range for charts.
type Prometheus struct {
	base   *url.URL
	client *http.Client
}

var _ Source = (*Prometheus)(nil)

// NewPrometheus returns a Source for the Prometheus at rawURL
// (http://127.0.0.1:9090). client nil: a client with a 30 s timeout.
func NewPrometheus(rawURL string, client *http.Client) (*Prometheus, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("prometheus URL %q: want http(s)://HOST:PORT", rawURL)
	}
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	return &Prometheus{base: u, client: client}, nil
}

// PromQL returns the query q stands for.
func (q RateQuery) PromQL() string {
	keys := make([]string, 0, len(q.Matchers))
	for k := range q.Matchers {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	sel := make([]string, len(keys))
	for i, k := range keys {
		sel[i] = k + "=" + strconv.Quote(q.Matchers[k])
	}
	return fmt.Sprintf("sum(rate(%s{%s}[%ds])) by (%s)", q.Metric, strings.Join(sel, ","),
		int64(math.Ceil(q.Range.Seconds())), strings.Join(q.By, ","))
}

// promResponse is the envelope of Prometheus's query API.
type promResponse struct {
	Status    string `json:"status"`
	ErrorType string `json:"errorType"`
	Error     string `json:"error"`
	Data      struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Metric map[string]string `json:"metric"`
			Value  []any             `json:"value"`
			Values [][]any           `json:"values"`
		} `json:"result"`
	} `json:"data"`
}

// Rates implements Source with one PromQL query.
func (p *Prometheus) Rates(ctx context.Context, q RateQuery) ([]Vector, error) {
	times := q.times()
	v := url.Values{"query": {q.PromQL()}}
	path := "/api/v1/query"
	if len(times) > 1 {
		path = "/api/v1/query_range"
		v.Set("start", formatTime(times[0]))
		v.Set("end", formatTime(times[len(times)-1]))
		v.Set("step", strconv.FormatFloat(q.Step.Seconds(), 'f', -1, 64))
	} else {
		v.Set("time", formatTime(times[0]))
	}
	u := p.base.JoinPath(path)
	u.RawQuery = v.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("querying Prometheus: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("reading Prometheus's answer: %w", err)
	}
	var pr promResponse
	if err := json.Unmarshal(body, &pr); err != nil {
		return nil, fmt.Errorf("Prometheus answered HTTP %d, not its API's JSON: %.200s", resp.StatusCode, body)
	}
	if pr.Status != "success" {
		return nil, fmt.Errorf("Prometheus refused %s: %s: %s", q.PromQL(), pr.ErrorType, pr.Error)
	}
	out := make([]Vector, 0, len(pr.Data.Result))
	for _, r := range pr.Data.Result {
		vec := Vector{Labels: Labels(r.Metric), Times: times, Values: make([]float64, len(times)), Present: make([]bool, len(times))}
		if vec.Labels == nil {
			vec.Labels = Labels{}
		}
		pairs := r.Values
		if r.Value != nil {
			pairs = [][]any{r.Value}
		}
		for _, pair := range pairs {
			ts, val, ok := parsePair(pair)
			if !ok || math.IsNaN(val) {
				continue
			}
			i := 0
			if len(times) > 1 {
				i = int(math.Round((ts - float64(times[0].UnixMilli())/1000) / q.Step.Seconds()))
			}
			if i >= 0 && i < len(times) {
				vec.Values[i], vec.Present[i] = val, true
			}
		}
		out = append(out, vec)
	}
	return out, nil
}

func formatTime(t time.Time) string {
	return strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', 3, 64)
}

// parsePair reads [unix seconds, "value"].
func parsePair(p []any) (float64, float64, bool) {
	if len(p) != 2 {
		return 0, 0, false
	}
	ts, ok := p[0].(float64)
	s, ok2 := p[1].(string)
	if !ok || !ok2 {
		return 0, 0, false
	}
	v, err := strconv.ParseFloat(s, 64)
	return ts, v, err == nil
}
