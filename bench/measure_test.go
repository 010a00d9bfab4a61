package main

import (
	"os"
	"strings"
	"syscall"
	"testing"
)

func TestMedian(t *testing.T) {
	tests := []struct {
		name string
		in   []float64
		want float64
	}{
		{"empty", nil, 0},
		{"one", []float64{3}, 3},
		{"odd", []float64{5, 1, 3}, 3},
		{"even", []float64{4, 1, 3, 2}, 2.5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := make([]result, len(tt.in))
			for i, v := range tt.in {
				rs[i].p50 = v
			}
			if got := median(rs, func(r result) float64 { return r.p50 }); got != tt.want {
				t.Errorf("median(%v) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestProcStats(t *testing.T) {
	pid := os.Getpid()
	for i := 0; cpuTicks(pid) == 0 && i < 1e9; i++ {
	}
	if cpuTicks(pid) <= 0 {
		t.Errorf("cpuTicks(self) = %d, want > 0", cpuTicks(pid))
	}
	u := sample([]int{syscall.Getpgrp()})
	if u.hwm < 1<<20 || u.rssAnon <= 0 || u.rssFile <= 0 || u.rssAnon+u.rssFile > u.hwm {
		t.Errorf("memory of self: VmHWM %d, RssAnon %d, RssFile %d; want VmHWM >= 1 MiB >= RssAnon+RssFile > 0", u.hwm, u.rssAnon, u.rssFile)
	}
	if u.vcsw+u.nvcsw <= 0 || u.syscr+u.syscw <= 0 {
		t.Errorf("counters of self: %d+%d context switches, %d+%d syscalls; want some", u.vcsw, u.nvcsw, u.syscr, u.syscw)
	}
	if cpuTicks(-1) != 0 || sample([]int{-1}) != (usage{}) {
		t.Error("a missing process must read as 0")
	}
}

func TestRenderAddsOverDirect(t *testing.T) {
	rs := []result{
		{name: "direct", p50: 1, p99: 2},
		{name: "nginx", p50: 2, p99: 4, cpuPer1000: 0.1, rssMB: 8},
		{name: "weft", p50: 3, p99: 3, cpuPer1000: 0.2, rssMB: 30},
	}
	out := render(rs, options{qps: 1000, connections: 16, rounds: 1}, "test machine")
	for _, want := range []string{
		"| nginx | default | 0 | 2.000 | 0.000 | 4.000 | 0.000 | +1.000 | +2.000 | 1.00× | 0.100 | 8.0 | 0 |",
		"| weft | default | 0 | 3.000 | 0.000 | 3.000 | 0.000 | +2.000 | +1.000 | 0.50× | 0.200 | 30.0 | 0 |",
		"| direct | default | 0 | 1.000 | 0.000 | 2.000 | 0.000 | +0.000 | +0.000 | – | – | – | 0 |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("render lacks %q:\n%s", want, out)
		}
	}
}

func TestRenderLoad(t *testing.T) {
	rs := []result{
		{name: "nginx", qps: 10000, p99: 8, requests: 100000, use: usage{ticks: 600, syscalls: 1430000, vcsw: 30000, hwm: 8 << 20}},
		{name: "weft", qps: 8000, p99: 9, requests: 80000, besideTicks: 80, use: usage{ticks: 560, syscalls: 1000000, partial: true, hwm: 48 << 20, rssFile: 23 << 20, rssAnon: 21 << 20}},
		{name: "nginx", qps: 9000, requests: 90000, use: usage{ticks: 540}},
		{name: "weft", qps: 8100, requests: 81000, use: usage{ticks: 567, hwm: 48 << 20, rssFile: 23 << 20, rssAnon: 21 << 20}},
	}
	out := renderLoad(rs, options{mode: "max", connections: 32, rounds: 2, perf: true}, "test machine", "1.00 2.00 3.00")
	for _, want := range []string{
		"load average at the end 1.00 2.00 3.00",
		"| nginx | 9500 | 1.00× | 10000, 9000 |",
		"| weft | 8050 | 0.85× | 8000 (0.80×), 8100 (0.90×) |",
		"| 70.0 | 1.17× | 5.0 | ≥ 6.2 |", // CPU, ÷ nginx, control plane (median of 10 and 0), syscalls per request
		"| 48.0 | 23.0 | 21.0 |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("renderLoad lacks %q:\n%s", want, out)
		}
	}
}
