// Command bench measures weft's data plane side by side with no proxy, an
// nginx pair and an HAProxy pair (the reference configs in ref/, from our
// team's shared bench folder), with fortio as client and echo server, and
// writes the results as a Markdown table.
//
//	go run ./bench [-duration 30s] [-qps 1000] [-connections 16] [-rounds 1] [-out bench/RESULTS.md]
//	go run ./bench fuzz [-time 10m] [-parallel 1] [-only FuzzName] [-out file.md]
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
	duration    time.Duration
	qps         float64
	connections int
	rounds      int
	out         string
	only        string
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "fuzz" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		if err := fuzzMain(ctx, os.Args[2:]); err != nil {
			log.Fatalf("bench fuzz: %v", err)
		}
		return
	}
	var o options
	flag.DurationVar(&o.duration, "duration", 30*time.Second, "length of each run")
	flag.Float64Var(&o.qps, "qps", 1000, "target requests per second")
	flag.IntVar(&o.connections, "connections", 16, "client connections")
	flag.IntVar(&o.rounds, "rounds", 1, "interleaved rounds of every configuration")
	flag.StringVar(&o.out, "out", "bench/RESULTS.md", "where to write the Markdown results")
	flag.StringVar(&o.only, "only", "", "run only this pair (haproxy or weft) besides direct and nginx, the references")
	flag.Parse()
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
	procs := &procSet{}
	defer procs.stopAll()
	env, err := setup(ctx, dir, procs, o.only)
	if err != nil {
		return err
	}
	pinSelf(0)
	var results []result
	for round := 0; round < o.rounds; round++ {
		for _, uniform := range []bool{false, true} {
			for _, cfg := range env.configs {
				if o.only != "" && o.only != cfg.name && cfg.name != "direct" && cfg.name != "nginx" && !(o.only == "weft" && strings.HasPrefix(cfg.name, "weft")) {
					continue
				}
				if ctx.Err() != nil {
					return ctx.Err()
				}
				r, err := measure(ctx, cfg, o, uniform)
				if err != nil {
					return fmt.Errorf("%s: %w", cfg.name, err)
				}
				log.Printf("%-8s uniform=%-5v qps=%.0f p50=%.3fms p99=%.3fms errors=%d", cfg.name, uniform, r.qps, r.p50, r.p99, r.errors)
				results = append(results, r)
			}
		}
	}
	table := render(results, o, env.versions)
	fmt.Print(table)
	if err := os.MkdirAll(filepath.Dir(o.out), 0o755); err != nil {
		return err
	}
	return os.WriteFile(o.out, []byte(table), 0o644)
}
