package main

import (
	"fmt"
	"os"
	"strings"
	"time"
)

// cpuPerRequest is the CPU of both proxies per request, in µs.
func (r result) cpuPerRequest() float64 {
	if r.requests == 0 {
		return 0
	}
	return float64(r.use.ticks) / clockTicks / float64(r.requests) * 1e6
}

// perRequest divides a counter of the run by its requests.
func (r result) perRequest(n int64) float64 {
	if r.requests == 0 {
		return 0
	}
	return float64(n) / float64(r.requests)
}

// loadAverage is /proc/loadavg's three averages, to say how busy the
// shared machine was.
func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// renderLoad writes the table of the max and fixed modes: per pair the
// medians over rounds of throughput, latency and what the kernel counted
// per request, every round's rps, and the ratios to nginx's pair.
func renderLoad(results []result, o options, versions, load string) string {
	groups := map[string][]result{}
	var names []string
	for _, r := range results {
		if groups[r.name] == nil {
			names = append(names, r.name)
		}
		groups[r.name] = append(groups[r.name], r)
	}
	var b strings.Builder
	what := fmt.Sprintf("closed loop, as fast as %d connections go", o.connections)
	if o.mode == "fixed" {
		what = fmt.Sprintf("%.0f qps uniform pacing, %d connections", o.qps, o.connections)
	}
	fmt.Fprintf(&b, "# weft data-plane benchmark, %s mode\n\nMeasured %s with `go run ./bench -mode %s` on %s; load average at the end %s.\n\n",
		o.mode, time.Now().UTC().Format("2006-01-02 15:04 MST"), o.mode, versions, load)
	fmt.Fprintf(&b, "fortio load → client-side hop → server-side hop → fortio echo server; %s, 1 KiB POST, %s per run, %d interleaved round(s); medians. "+
		"Latency in ms; CPU, syscalls and context switches are both proxies' together, per request; memory is the pair's largest process.\n\n", what, o.duration, o.rounds)
	sysHead := "syscalls (perf)"
	if !o.perf {
		sysHead = "syscalls (perf unavailable)"
	}
	b.WriteString("| pair | rps | rps ÷ nginx | rps of each round (÷ nginx's that round) | p50 | p99 | p99.9 | CPU µs/request | CPU ÷ nginx | control plane CPU µs/request | " + sysHead +
		" | read+write syscalls (/proc io) | context switches (vol+invol) | VmHWM MB | RssFile MB | RssAnon MB | errors |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	ng := groups["nginx"]
	ngRPS, ngCPU := median(ng, func(r result) float64 { return r.qps }), median(ng, result.cpuPerRequest)
	for _, name := range names {
		rs := groups[name]
		m := func(f func(result) float64) float64 { return median(rs, f) }
		rps, cpu := m(func(r result) float64 { return r.qps }), m(result.cpuPerRequest)
		var rounds []string
		var errs int64
		for i, r := range rs {
			round := fmt.Sprintf("%.0f", r.qps)
			if i < len(ng) && ng[i].qps > 0 && name != "nginx" {
				round += fmt.Sprintf(" (%.2f×)", r.qps/ng[i].qps)
			}
			rounds = append(rounds, round)
			errs += r.errors
		}
		dash := func(ok bool, s string) string {
			if !ok {
				return "–"
			}
			return s
		}
		proxied := name != "direct"
		sys := m(func(r result) float64 {
			if r.use.syscalls < 0 {
				return -1
			}
			return r.perRequest(r.use.syscalls)
		})
		atLeast := ""
		for _, r := range rs {
			if r.use.partial {
				atLeast = "≥ " // perf missed threads started during a run
			}
		}
		cp := m(func(r result) float64 {
			if r.requests == 0 {
				return 0
			}
			return float64(r.besideTicks) / clockTicks / float64(r.requests) * 1e6
		})
		fmt.Fprintf(&b, "| %s | %.0f | %s | %s | %.3f | %.3f | %.3f | %s | %s | %s | %s | %s | %s | %s | %s | %s | %d |\n", name, rps,
			dash(ngRPS > 0, fmt.Sprintf("%.2f×", rps/ngRPS)), strings.Join(rounds, ", "),
			m(func(r result) float64 { return r.p50 }), m(func(r result) float64 { return r.p99 }), m(func(r result) float64 { return r.p999 }),
			dash(proxied, fmt.Sprintf("%.1f", cpu)), dash(proxied && ngCPU > 0, fmt.Sprintf("%.2f×", cpu/ngCPU)),
			dash(strings.HasPrefix(name, "weft"), fmt.Sprintf("%.1f", cp)),
			dash(proxied && o.perf && sys >= 0, fmt.Sprintf("%s%.1f", atLeast, sys)),
			dash(proxied, fmt.Sprintf("%.1f", m(func(r result) float64 { return r.perRequest(r.use.syscr + r.use.syscw) }))),
			dash(proxied, fmt.Sprintf("%.2f (%.0f in the run)", m(func(r result) float64 { return r.perRequest(r.use.vcsw + r.use.nvcsw) }),
				m(func(r result) float64 { return float64(r.use.vcsw + r.use.nvcsw) }))),
			dash(proxied, fmt.Sprintf("%.1f", m(func(r result) float64 { return float64(r.use.hwm) / (1 << 20) }))),
			dash(proxied, fmt.Sprintf("%.1f", m(func(r result) float64 { return float64(r.use.rssFile) / (1 << 20) }))),
			dash(proxied, fmt.Sprintf("%.1f", m(func(r result) float64 { return float64(r.use.rssAnon) / (1 << 20) }))),
			errs)
	}
	return b.String()
}
