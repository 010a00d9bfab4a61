// Command bench measures weft's data plane side by side with no proxy, an
// nginx pair and an HAProxy pair (the reference configs in ref/, from our
// team's shared bench folder), with fortio as client and echo server, and
// writes the results as a Markdown table.
//
//	go run ./bench [-duration 30s] [-qps 1000] [-connections 16] [-rounds 1] [-out bench/RESULTS.md]
//	go run ./bench -mode max -c 32 -duration 10s -rounds 3    # closed loop, as fast as it goes
//	go run ./bench -mode fixed -qps 3000 -duration 5s          # CPU, syscalls, wake-ups per request
//	go run ./bench fuzz [-time 10m] [-parallel 1] [-only FuzzName] [-out file.md]
//	go run ./bench controlplane [-services 1000] [-proxies 2000] [-pushes 10] [-restart]
//
// "bench controlplane" starts `weft control-plane` (on core 1) and that many
// simulated sidecars speaking weft's xDS protocol, and measures how fast
// they are configured, pushed to, and reconfigured after a restart.
//
// "bench fuzz" runs every fuzz target of a parser of untrusted input, one
// after another; findings land in each package's testdata/fuzz/.
//
// It needs nginx and haproxy on PATH (Debian packages nginx, haproxy).
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	flog "fortio.org/log"
)

type options struct {
	mode        string // latency, max or fixed
	duration    time.Duration
	qps         float64
	connections int
	rounds      int
	out         string
	only        string
	perf        bool   // count syscalls with perf
	profile     string // where to keep CPU profiles of the weft proxies ("": none)
	warmup      time.Duration
	dir         string // the run's temp dir
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "controlplane" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		if err := controlPlaneMain(ctx, os.Args[2:]); err != nil {
			log.Fatalf("bench controlplane: %v", err)
		}
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "fuzz" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		if err := fuzzMain(ctx, os.Args[2:]); err != nil {
			log.Fatalf("bench fuzz: %v", err)
		}
		return
	}
	var o options
	flag.StringVar(&o.mode, "mode", "latency", "latency: added latency at -qps with both pacings; max: closed-loop load at -c connections, as fast as it goes; fixed: one pacing at -qps (default 3000) for CPU, syscalls and wake-ups per request")
	flag.DurationVar(&o.duration, "duration", 30*time.Second, "length of each run")
	flag.Float64Var(&o.qps, "qps", 1000, "target requests per second (latency mode; fixed mode defaults to 3000)")
	flag.IntVar(&o.connections, "connections", 16, "client connections")
	flag.IntVar(&o.connections, "c", 16, "client connections (same as -connections)")
	flag.StringVar(&o.profile, "profile", "", "keep CPU profiles of every weft proxy's runs (taken from its admin's /debug/pprof) in this directory")
	flag.DurationVar(&o.warmup, "warmup", 2*time.Second, "closed-loop load on every path before the first round, not measured, so no proxy or echo server starts cold")
	flag.BoolVar(&o.perf, "perf", true, "count every syscall of the proxies with perf (raw_syscalls:sys_enter), when perf works here")
	flag.IntVar(&o.rounds, "rounds", 1, "interleaved rounds of every configuration")
	flag.StringVar(&o.out, "out", "bench/RESULTS.md", "where to write the Markdown results")
	flag.StringVar(&o.only, "only", "", "run only this pair (haproxy or weft) besides direct and nginx, the references")
	flag.Parse()
	qpsSet := false
	flag.Visit(func(f *flag.Flag) { qpsSet = qpsSet || f.Name == "qps" })
	switch o.mode {
	case "latency":
	case "max":
		o.qps = -1
	case "fixed":
		if !qpsSet {
			o.qps = 3000
		}
	default:
		log.Fatalf("bench: -mode %q: want latency, max or fixed", o.mode)
	}
	flog.SetLogLevelQuiet(flog.Warning)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		log.Fatalf("bench: %v", err)
	}
}

func run(ctx context.Context, o options) error {
	dir, err := os.MkdirTemp("", "weft-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	o.dir = dir
	o.perf = o.perf && o.mode != "latency" && perfWorks()
	procs := &procSet{}
	defer procs.stopAll()
	env, err := setup(ctx, dir, procs, o.only)
	if err != nil {
		return err
	}
	pinSelf(0)
	if err := warmUp(ctx, env, o); err != nil {
		return err
	}
	var results []result
	pacings := []bool{false, true}
	if o.mode != "latency" {
		pacings = []bool{o.mode == "fixed"}
	}
	for round := 0; round < o.rounds; round++ {
		for _, uniform := range pacings {
			for _, cfg := range env.configs {
				if o.only != "" && o.only != cfg.name && cfg.name != "direct" && cfg.name != "nginx" && !(o.only == "weft" && strings.HasPrefix(cfg.name, "weft")) {
					continue
				}
				if ctx.Err() != nil {
					return ctx.Err()
				}
				r, err := measure(ctx, cfg, o, uniform, o.qps)
				if err != nil {
					return fmt.Errorf("%s: %w", cfg.name, err)
				}
				log.Printf("%-9s uniform=%-5v qps=%.0f p50=%.3fms p99=%.3fms errors=%d cpu=%.1fµs/req", cfg.name, uniform, r.qps, r.p50, r.p99, r.errors, r.cpuPerRequest())
				results = append(results, r)
			}
		}
	}
	table := render(results, o, env.versions)
	if o.mode != "latency" {
		table = renderLoad(results, o, env.versions, loadAverage())
	}
	fmt.Print(table)
	if err := os.MkdirAll(filepath.Dir(o.out), 0o755); err != nil {
		return err
	}
	return writeKeepingSections(o.out, table)
}

// warmUp runs o.warmup of closed-loop load on every configuration,
// unmeasured: the first round would otherwise find each path's echo
// server and proxies with cold heaps and pools.
func warmUp(ctx context.Context, env *benchEnv, o options) error {
	if o.warmup <= 0 {
		return nil
	}
	w := o
	w.duration, w.perf, w.profile = o.warmup, false, ""
	for _, cfg := range env.configs {
		if _, err := measure(ctx, cfg, w, false, -1); err != nil {
			return fmt.Errorf("warming up %s: %w", cfg.name, err)
		}
	}
	return nil
}
