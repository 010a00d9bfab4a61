package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// fuzzTarget is one native Go fuzz target of a parser that reads input
// from outside the process.
type fuzzTarget struct {
	pkg, name, what string
}

// fuzzTargets are the parsers of untrusted input, in the order they run.
var fuzzTargets = []fuzzTarget{
	{"./internal/proxy/http1", "FuzzReadRequest", "HTTP/1 request head and body (downstream)"},
	{"./internal/proxy/http1", "FuzzReadResponse", "HTTP/1 response head and body (upstream)"},
	{"./internal/config", "FuzzParse", "Istio config YAML/JSON"},
	{"./internal/proxy/dataplane", "FuzzJWTVerify", "JWT (RequestAuthentication)"},
	{"./internal/proxy/dataplane", "FuzzCompile", "xDS resources received by weft proxy (decode + compile)"},
	{"./internal/proxy/dataplane", "FuzzReadProxyHeader", "PROXY protocol v1/v2 header"},
	{"./internal/proxy/dnsproxy", "FuzzAnswer", "DNS query (DNS proxy)"},
	{"./internal/proxy/dataplane", "FuzzNormalizePath", "request path normalization"},
}

// fuzzResult is what one target's run reported.
type fuzzResult struct {
	target      fuzzTarget
	elapsed     time.Duration
	execs       int64
	interesting int64 // new coverage-increasing inputs this run
	corpus      int64 // total corpus after the run
	failed      bool
	finding     string // testdata/fuzz/FuzzX/... the failing input was written to
	log         string
}

// fuzzMain runs "bench fuzz": every target for -time, one after another.
func fuzzMain(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("fuzz", flag.ExitOnError)
	d := fs.Duration("time", 10*time.Minute, "fuzzing time per target")
	parallel := fs.Int("parallel", 1, "fuzzing workers per target (go test -parallel)")
	only := fs.String("only", "", "run only targets whose name contains this")
	logDir := fs.String("logdir", "", "keep each target's go test output here (default: a temp dir)")
	out := fs.String("out", "", "also write the Markdown results here")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *logDir == "" {
		dir, err := os.MkdirTemp("", "weft-fuzz-")
		if err != nil {
			return err
		}
		*logDir = dir
	}
	var results []fuzzResult
	for _, t := range fuzzTargets {
		if *only != "" && !strings.Contains(t.name, *only) {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		r, err := runFuzz(ctx, t, *d, *parallel, *logDir)
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "%s %s: %s, %d execs, %d new interesting, failed=%v %s\n",
			t.pkg, t.name, r.elapsed, r.execs, r.interesting, r.failed, r.finding)
		results = append(results, r)
	}
	table := renderFuzz(results, *d, *parallel)
	fmt.Print(table)
	if *out != "" {
		return os.WriteFile(*out, []byte(table), 0o644)
	}
	return nil
}

// runFuzz runs one target with go test and reads its progress lines.
func runFuzz(ctx context.Context, t fuzzTarget, d time.Duration, parallel int, logDir string) (fuzzResult, error) {
	logPath := filepath.Join(logDir, t.name+".log")
	lf, err := os.Create(logPath)
	if err != nil {
		return fuzzResult{}, fmt.Errorf("fuzz log: %w", err)
	}
	defer lf.Close()
	// go test's default -timeout (10m) would end a 10m fuzzing run with
	// "context deadline exceeded": give the build and baseline coverage room.
	cmd := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-fuzz", "^"+t.name+"$",
		"-fuzztime", d.String(), "-timeout", (2*d + 10*time.Minute).String(), "-parallel", strconv.Itoa(parallel), t.pkg)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		return fuzzResult{}, fmt.Errorf("starting go test for %s: %w", t.name, err)
	}
	done := make(chan fuzzResult)
	go func() { done <- scanFuzz(io.TeeReader(pr, lf), t) }()
	werr := cmd.Wait()
	pw.Close()
	r := <-done
	r.log = logPath
	r.failed = werr != nil
	return r, nil
}

var (
	progressRe = regexp.MustCompile(`^fuzz: elapsed: (\S+), execs: (\d+) .*?new interesting: (\d+) \(total: (\d+)\)`)
	findingRe  = regexp.MustCompile(`Failing input written to (\S+)`)
)

// scanFuzz keeps the last progress line's numbers and the finding's path.
func scanFuzz(rd io.Reader, t fuzzTarget) fuzzResult {
	r := fuzzResult{target: t}
	sc := bufio.NewScanner(rd)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if m := progressRe.FindStringSubmatch(line); m != nil {
			r.elapsed, _ = time.ParseDuration(m[1])
			r.execs, _ = strconv.ParseInt(m[2], 10, 64)
			r.interesting, _ = strconv.ParseInt(m[3], 10, 64)
			r.corpus, _ = strconv.ParseInt(m[4], 10, 64)
		}
		if m := findingRe.FindStringSubmatch(line); m != nil {
			r.finding = filepath.Join(t.pkg, m[1])
		}
	}
	_, _ = io.Copy(io.Discard, rd)
	return r
}

// renderFuzz writes the results as a Markdown table.
func renderFuzz(rs []fuzzResult, d time.Duration, parallel int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Fuzzing, %s per target, -parallel %d, %s\n\n", d, parallel, time.Now().UTC().Format("2006-01-02"))
	b.WriteString("| target | input | time | execs | new interesting (corpus) | result |\n|---|---|---|---|---|---|\n")
	for _, r := range rs {
		res := "no finding"
		if r.execs == 0 && !r.failed {
			res = "did not run (no such target?), see " + r.log
		}
		if r.failed {
			res = "FAILED, see " + r.log
			if r.finding != "" {
				res = "finding: " + r.finding
			}
		}
		fmt.Fprintf(&b, "| %s %s | %s | %s | %d | %d (%d) | %s |\n", r.target.pkg, r.target.name, r.target.what,
			r.elapsed.Round(time.Second), r.execs, r.interesting, r.corpus, res)
	}
	return b.String()
}
