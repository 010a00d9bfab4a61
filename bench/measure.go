package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"sort"
	"strings"
	"time"

	"fortio.org/fortio/fhttp"
	"fortio.org/fortio/periodic"
)

// result is one run of one configuration.
type result struct {
	name                string
	uniform             bool
	qps                 float64
	p50, p90, p99, p999 float64 // ms
	errors              int64
	cpuPer1000          float64 // vCPU of all proxies per 1000 rps
	rssMB               float64 // peak RSS of the largest proxy process group member
	requests            int64   // requests completed
	use                 usage   // what the kernel counted for the proxies over the run
	besideTicks         int64   // CPU of cfg.beside (the control plane) over the run
}

const clockTicks = 100 // USER_HZ on Linux

// measure runs one load against cfg at qps (-1: as fast as the closed
// loop of o.connections goes) and reads the proxies' counters around it.
func measure(ctx context.Context, cfg config, o options, uniform bool, qps float64) (result, error) {
	r := result{name: cfg.name, uniform: uniform}
	ho := fhttp.HTTPRunnerOptions{}
	ho.RunnerOptions = periodic.RunnerOptions{QPS: qps, Duration: o.duration, NumThreads: o.connections,
		Uniform: uniform, Percentiles: []float64{50, 90, 99, 99.9}, Resolution: 0.00001, Out: io.Discard}
	ho.Init(cfg.url)
	ho.Payload = make([]byte, 1024)
	for i := range ho.Payload {
		ho.Payload[i] = 'a' + byte(i%26)
	}
	if cfg.host != "" {
		if err := ho.AddAndValidateExtraHeader("Host: " + cfg.host); err != nil {
			return r, err
		}
	}
	before, besideBefore := sample(cfg.proxies), sample(cfg.beside)
	var perf *perfCounter
	if o.perf {
		perf = startPerf(o.dir, cfg.proxies)
	}
	profiled := startProfiles(ctx, cfg, o)
	start := time.Now()
	res, err := fhttp.RunHTTPTest(&ho)
	elapsed := time.Since(start).Seconds()
	partial := perf.missed(cfg.proxies)
	syscalls := perf.stop(ctx)
	if perr := profiled(); perr != nil {
		log.Printf("%s: %v", cfg.name, perr)
	}
	if err != nil {
		return r, err
	}
	r.use = sample(cfg.proxies).sub(before)
	r.besideTicks = sample(cfg.beside).ticks - besideBefore.ticks
	r.use.syscalls, r.use.partial = syscalls, partial
	ticks := r.use.ticks
	r.rssMB = float64(r.use.hwm) / (1 << 20)
	r.requests = res.DurationHistogram.Count
	r.qps = res.ActualQPS
	for _, p := range res.DurationHistogram.Percentiles {
		ms := p.Value * 1000
		switch p.Percentile {
		case 50:
			r.p50 = ms
		case 90:
			r.p90 = ms
		case 99:
			r.p99 = ms
		case 99.9:
			r.p999 = ms
		}
	}
	for code, n := range res.RetCodes {
		if code != 200 {
			r.errors += n
		}
	}
	if r.qps > 0 && len(cfg.proxies) > 0 {
		r.cpuPer1000 = float64(ticks) / clockTicks / elapsed / (r.qps / 1000)
	}
	return r, ctx.Err()
}

// render writes the table: medians per configuration and pacing, and ratios to nginx.
func render(results []result, o options, versions string) string {
	type key struct {
		name    string
		uniform bool
	}
	groups := map[key][]result{}
	for _, r := range results {
		k := key{r.name, r.uniform}
		groups[k] = append(groups[k], r)
	}
	med := func(k key, f func(result) float64) float64 { return median(groups[k], f) }
	var b strings.Builder
	fmt.Fprintf(&b, "# weft data-plane benchmark\n\nMeasured %s with `go run ./bench` on %s.\n\n", time.Now().UTC().Format("2006-01-02"), versions)
	fmt.Fprintf(&b, "fortio load → client-side hop → server-side hop → fortio echo server; %.0f qps, %d connections, 1 KiB POST, %s per run, %d interleaved round(s); medians. Latency in ms; added = over direct with the same pacing.\n\n", o.qps, o.connections, o.duration, o.rounds)
	b.WriteString("| pair | pacing | qps | p50 | p90 | p99 | p99.9 | added p50 | added p99 | added p99 ÷ nginx's | CPU of both proxies, vCPU per 1000 rps | peak RSS per proxy (MB) | errors |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, uniform := range []bool{false, true} {
		pacing := "default"
		if uniform {
			pacing = "uniform"
		}
		d := key{"direct", uniform}
		ng := key{"nginx", uniform}
		ngAdded := med(ng, func(r result) float64 { return r.p99 }) - med(d, func(r result) float64 { return r.p99 })
		for _, name := range []string{"direct", "nginx", "haproxy", "weft", "weft-off", "weft-mtls"} {
			k := key{name, uniform}
			if len(groups[k]) == 0 {
				continue
			}
			p50, p99 := med(k, func(r result) float64 { return r.p50 }), med(k, func(r result) float64 { return r.p99 })
			added50, added99 := p50-med(d, func(r result) float64 { return r.p50 }), p99-med(d, func(r result) float64 { return r.p99 })
			ratio := "–"
			if name != "direct" && ngAdded > 0 {
				ratio = fmt.Sprintf("%.2f×", added99/ngAdded)
			}
			var errs int64
			for _, r := range groups[k] {
				errs += r.errors
			}
			cpu, rss := "–", "–"
			if name != "direct" {
				cpu = fmt.Sprintf("%.3f", med(k, func(r result) float64 { return r.cpuPer1000 }))
				rss = fmt.Sprintf("%.1f", med(k, func(r result) float64 { return r.rssMB }))
			}
			fmt.Fprintf(&b, "| %s | %s | %.0f | %.3f | %.3f | %.3f | %.3f | %+.3f | %+.3f | %s | %s | %s | %d |\n", name, pacing,
				med(k, func(r result) float64 { return r.qps }), p50, med(k, func(r result) float64 { return r.p90 }), p99,
				med(k, func(r result) float64 { return r.p999 }), added50, added99, ratio, cpu, rss, errs)
		}
	}
	return b.String()
}

// median is the median of f over rs (the mean of the middle two for an even count).
func median(rs []result, f func(result) float64) float64 {
	vals := make([]float64, len(rs))
	for i, r := range rs {
		vals[i] = f(r)
	}
	sort.Float64s(vals)
	switch n := len(vals); {
	case n == 0:
		return 0
	case n%2 == 0:
		return (vals[n/2-1] + vals[n/2]) / 2
	default:
		return vals[n/2]
	}
}
