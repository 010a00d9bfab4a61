package demo

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// helperArg makes the test binary act as a small child command (see TestMain).
const helperArg = "weft-demo-helper"

func TestMain(m *testing.M) {
	if len(os.Args) > 2 && os.Args[1] == helperArg {
		os.Exit(helper(os.Args[2], os.Args[3:]))
	}
	goleak.VerifyTestMain(m)
}

// helper runs one child mode:
//
//	serve FILE     listen, write the address to FILE, exit 0 on SIGTERM
//	stubborn FILE  like serve but ignore SIGTERM
//	orphan FILE    start a stubborn grandchild in the same process group, exit on SIGTERM
//	detach FILE    like orphan but the grandchild has its own process group
//	fail           print to stderr and exit 3
func helper(mode string, args []string) int {
	switch mode {
	case "detach":
		cmd := exec.Command(os.Args[0], helperArg, "stubborn", args[0])
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		term := make(chan os.Signal, 1)
		signal.Notify(term, syscall.SIGTERM)
		<-term
		return 0
	case "fail":
		fmt.Fprintln(os.Stderr, "boom: failing on purpose")
		return 3
	case "orphan":
		cmd := exec.Command(os.Args[0], helperArg, "stubborn", args[0])
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Start(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		term := make(chan os.Signal, 1)
		signal.Notify(term, syscall.SIGTERM)
		<-term
		return 0
	}
	if mode == "stubborn" {
		signal.Ignore(syscall.SIGTERM)
	}
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := os.WriteFile(args[0]+".tmp", []byte(ln.Addr().String()), 0o644); err != nil {
		return 1
	}
	if err := os.Rename(args[0]+".tmp", args[0]); err != nil {
		return 1
	}
	fmt.Println("serving on", ln.Addr())
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	if mode == "stubborn" {
		select {}
	}
	<-term
	fmt.Println("stopping")
	return 0
}

// waitAddr polls for the address a helper writes once it listens.
func waitAddr(t *testing.T, file string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(file); err == nil {
			return string(b)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("helper never wrote %s", file)
	return ""
}

// waitClosed polls until nothing listens on addr: a SIGKILLed grandchild,
// which nobody waits for, dies a moment after kill(2) returns.
func waitClosed(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return
		}
		c.Close()
		time.Sleep(10 * time.Millisecond)
	}
	t.Errorf("%s still listening after stopAll", addr)
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newTestSupervisor(t *testing.T, verbose io.Writer) (*supervisor, string) {
	t.Helper()
	dir := t.TempDir()
	s := newSupervisor(os.Args[0], dir, verbose, quietLogger())
	t.Cleanup(func() { s.stopAll(time.Second) })
	return s, dir
}

func TestSupervisorStopsEverything(t *testing.T) {
	tests := []struct {
		name  string
		modes []string // the first is stopped last, like the control plane
	}{
		{"graceful", []string{"serve", "serve", "serve"}},
		{"ignores SIGTERM", []string{"serve", "stubborn"}},
		{"orphaned grandchild", []string{"serve", "orphan"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, dir := newTestSupervisor(t, nil)
			var addrs []string
			for i, mode := range tc.modes {
				file := filepath.Join(dir, fmt.Sprintf("addr%d", i))
				if err := s.start(fmt.Sprintf("p%d", i), helperArg, mode, file); err != nil {
					t.Fatal(err)
				}
				addrs = append(addrs, waitAddr(t, file))
			}
			for _, a := range addrs {
				c, err := net.Dial("tcp", a)
				if err != nil {
					t.Fatalf("helper not listening on %s: %v", a, err)
				}
				c.Close()
			}
			s.stopAll(300 * time.Millisecond)
			for _, a := range addrs {
				waitClosed(t, a)
			}
			log, err := os.ReadFile(filepath.Join(dir, "p0.log"))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(log), "serving on") || !strings.Contains(string(log), "stopping") {
				t.Errorf("p0.log = %q, want its output and a graceful stop", log)
			}
		})
	}
}

// TestSupervisorKillsAdoptedOrphans is not parallel: as a subreaper it kills
// every child of the test process.
func TestSupervisorKillsAdoptedOrphans(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("subreaper is Linux-only")
	}
	if err := becomeSubreaper(); err != nil {
		t.Skip(err)
	}
	s, dir := newTestSupervisor(t, nil)
	s.reap = true
	file := filepath.Join(dir, "addr")
	if err := s.start("detacher", helperArg, "detach", file); err != nil {
		t.Fatal(err)
	}
	addr := waitAddr(t, file)
	s.stopAll(300 * time.Millisecond)
	waitClosed(t, addr)
}

func TestSupervisorReportsDeath(t *testing.T) {
	t.Parallel()
	s, dir := newTestSupervisor(t, nil)
	if err := s.start("doomed", helperArg, "fail"); err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-s.died:
		if d.name != "doomed" || d.err == nil || d.log != filepath.Join(dir, "doomed.log") {
			t.Errorf("death = %+v, want doomed with an error and its log", d)
		}
		if b, _ := os.ReadFile(d.log); !strings.Contains(string(b), "boom") {
			t.Errorf("log = %q, want the child's stderr", b)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no death reported")
	}
}

// syncBuffer is a bytes.Buffer safe for the supervisor's copy goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func TestSupervisorVerbosePrefixesOutput(t *testing.T) {
	t.Parallel()
	var out syncBuffer
	s, _ := newTestSupervisor(t, &out)
	if err := s.start("noisy", helperArg, "fail"); err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-s.died:
		if d.log != "stderr" {
			t.Errorf("death log = %q, want stderr", d.log)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no death reported")
	}
	if got, want := out.String(), "[noisy] boom: failing on purpose\n"; got != want {
		t.Errorf("verbose output = %q, want %q", got, want)
	}
}

func TestPrefixWriter(t *testing.T) {
	tests := []struct {
		name   string
		writes []string
		want   string
	}{
		{"whole lines", []string{"a\nb\n"}, "[x] a\n[x] b\n"},
		{"split line", []string{"hel", "lo\nwor", "ld\n"}, "[x] hello\n[x] world\n"},
		{"unterminated tail flushed on close", []string{"last"}, "[x] last\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			w := &prefixWriter{w: &b, prefix: "[x] "}
			for _, s := range tc.writes {
				if _, err := w.Write([]byte(s)); err != nil {
					t.Fatal(err)
				}
			}
			w.Close()
			if b.String() != tc.want {
				t.Errorf("got %q, want %q", b.String(), tc.want)
			}
		})
	}
}

// TestSupervisorRestarts: in restart mode a child that exits is started
// again, with a growing back-off, its log appended, and every restart
// reported; stopAll ends the restarts.
func TestSupervisorRestarts(t *testing.T) {
	t.Parallel()
	s, dir := newTestSupervisor(t, nil)
	s.backoff, s.maxBackoff = 20*time.Millisecond, 80*time.Millisecond
	var events syncBuffer
	s.restartMode(&events)
	if err := s.start("crashy", helperArg, "fail"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for s.Restarts()["crashy"] < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("restarts = %v, want 3; events:\n%s", s.Restarts(), events.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.stopAll(time.Second)
	n := s.Restarts()["crashy"]
	time.Sleep(200 * time.Millisecond) // longer than the back-off: no restart may follow stopAll
	if got := s.Restarts()["crashy"]; got != n {
		t.Errorf("restarted after stopAll: %d → %d", n, got)
	}
	for _, want := range []string{"crashy exited (exit status 3); restart 1 in 20ms", "restart 2 in 40ms", "restart 3 in 80ms"} {
		if !strings.Contains(events.String(), want) {
			t.Errorf("events lack %q:\n%s", want, events.String())
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "crashy.log")); strings.Count(string(b), "boom") < 3 {
		t.Errorf("log holds %d runs, want every run appended:\n%s", strings.Count(string(b), "boom"), b)
	}
}

func TestWithReplicas(t *testing.T) {
	ws := []workload{{name: "reviews-v1-1", service: "reviews", version: "v1"}, {name: "reviews-v2-1", service: "reviews", version: "v2"}}
	tests := []struct {
		replicas map[string]int
		want     []string
		err      string
	}{
		{nil, []string{"reviews-v1-1", "reviews-v2-1"}, ""},
		{map[string]int{"reviews-v2": 3}, []string{"reviews-v1-1", "reviews-v2-1", "reviews-v2-2", "reviews-v2-3"}, ""},
		{map[string]int{"reviews-v9": 2}, nil, "no such workload; the demo runs reviews-v1, reviews-v2"},
		{map[string]int{"reviews-v1": 0}, nil, "want 1 to 20 instances"},
	}
	for _, tc := range tests {
		got, err := withReplicas(ws, tc.replicas)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("withReplicas(%v) error %v, want %q", tc.replicas, err, tc.err)
			}
			continue
		}
		var names []string
		for _, w := range got {
			names = append(names, w.name)
		}
		if err != nil || strings.Join(names, " ") != strings.Join(tc.want, " ") {
			t.Errorf("withReplicas(%v) = %v, %v; want %v", tc.replicas, names, err, tc.want)
		}
	}
}
