package metrics

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Scrape defaults: Istio's port and path, and weft's interval.
const (
	DefaultScrapeInterval = 5 * time.Second
	StatsPort             = 15090
	StatsPath             = "/stats/prometheus"
)

// maxScrapeBytes bounds one scrape's body.
const maxScrapeBytes = 32 << 20

// Target is one proxy to scrape.
type Target struct {
	// Address is host:port of its Prometheus endpoint (POD_IP:15090).
	Address string
	// Labels are the target's labels for service discovery (namespace,
	// pod, app, version, proxy_type).
	Labels map[string]string
}

// ScraperOptions configures a Scraper.
type ScraperOptions struct {
	Store *Store
	// Targets lists the proxies to scrape, called before every round.
	Targets func() []Target
	// Interval is the time between rounds (DefaultScrapeInterval when 0).
	Interval time.Duration
	// Client makes the requests (a client with no proxy and a timeout of
	// Interval when nil).
	Client *http.Client
	Logger *slog.Logger
}

// Scraper scrapes every target each interval into the store.
type Scraper struct {
	opts ScraperOptions
	log  *slog.Logger
	now  func() time.Time

	mu     sync.Mutex
	failed map[string]string // address -> last error, logged once per change
}

// NewScraper returns a scraper; Run starts it.
func NewScraper(opts ScraperOptions) *Scraper {
	if opts.Interval <= 0 {
		opts.Interval = DefaultScrapeInterval
	}
	if opts.Client == nil {
		opts.Client = &http.Client{Timeout: opts.Interval, Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 1}}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Scraper{opts: opts, log: opts.Logger.With("component", "metrics-scraper"), now: time.Now, failed: map[string]string{}}
}

// Run scrapes until ctx ends.
func (s *Scraper) Run(ctx context.Context) {
	t := time.NewTicker(s.opts.Interval)
	defer t.Stop()
	for {
		s.ScrapeOnce(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ScrapeOnce scrapes every target once, concurrently, and stores what it got.
func (s *Scraper) ScrapeOnce(ctx context.Context) {
	var wg sync.WaitGroup
	for _, tg := range s.opts.Targets() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			now := s.now()
			points, err := s.scrape(ctx, tg.Address)
			s.report(tg.Address, err)
			if err == nil {
				s.opts.Store.Append(now, points)
			}
		}()
	}
	wg.Wait()
}

func (s *Scraper) report(addr string, err error) {
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	s.mu.Lock()
	prev := s.failed[addr]
	if msg == "" {
		delete(s.failed, addr)
	} else {
		s.failed[addr] = msg
	}
	s.mu.Unlock()
	if msg != prev && msg != "" {
		s.log.Warn("scraping proxy metrics", "target", addr, "error", msg)
	}
}

func (s *Scraper) scrape(ctx context.Context, addr string) ([]Point, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+StatsPath, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := s.opts.Client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: HTTP %d", req.URL, resp.StatusCode)
	}
	return Parse(io.LimitReader(resp.Body, maxScrapeBytes))
}

// keep says whether a family is stored: Istio's metrics only, and of the
// byte-size histograms only _sum and _count (charts show average sizes;
// their buckets would double the store's size).
func keep(name string) bool { return strings.HasPrefix(name, "istio_") }

// keepBuckets says whether a histogram's buckets are stored.
func keepBuckets(name string) bool { return name == RequestDuration }

// Parse reads Prometheus text exposition and returns the points of Istio's
// metric families (istio_*), histograms as _bucket/_sum/_count points.
func Parse(r io.Reader) ([]Point, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("parsing metrics: %w", err)
	}
	var out []Point
	for name, mf := range fams {
		if !keep(name) {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := make(Labels, len(m.GetLabel()))
			for _, lp := range m.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				out = append(out, Point{Name: name, Labels: l, Value: m.GetCounter().GetValue()})
			case dto.MetricType_GAUGE:
				out = append(out, Point{Name: name, Labels: l, Value: m.GetGauge().GetValue()})
			case dto.MetricType_UNTYPED:
				out = append(out, Point{Name: name, Labels: l, Value: m.GetUntyped().GetValue()})
			case dto.MetricType_HISTOGRAM:
				out = appendHistogram(out, name, l, m.GetHistogram())
			}
		}
	}
	return out, nil
}

// appendHistogram adds a histogram's _sum, _count and (if kept) _bucket
// points, +Inf included.
func appendHistogram(out []Point, name string, l Labels, h *dto.Histogram) []Point {
	count := float64(h.GetSampleCount())
	if h.SampleCountFloat != nil {
		count = h.GetSampleCountFloat()
	}
	out = append(out,
		Point{Name: name + "_sum", Labels: l, Value: h.GetSampleSum()},
		Point{Name: name + "_count", Labels: l, Value: count})
	if !keepBuckets(name) {
		return out
	}
	inf := false
	for _, b := range h.GetBucket() {
		v := float64(b.GetCumulativeCount())
		if b.CumulativeCountFloat != nil {
			v = b.GetCumulativeCountFloat()
		}
		inf = inf || math.IsInf(b.GetUpperBound(), 1)
		out = append(out, Point{Name: name + "_bucket", Labels: l, Le: formatLe(b.GetUpperBound()), Value: v})
	}
	if !inf {
		out = append(out, Point{Name: name + "_bucket", Labels: l, Le: "+Inf", Value: count})
	}
	return out
}

// formatLe writes a bucket bound as Prometheus does.
func formatLe(v float64) string {
	if math.IsInf(v, 1) {
		return "+Inf"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// TargetAddress is the Prometheus endpoint of a proxy with this pod IP.
func TargetAddress(ip string) string { return net.JoinHostPort(ip, strconv.Itoa(StatsPort)) }
