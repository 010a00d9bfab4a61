package demo

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// supervisor starts child processes, each in its own process group with
// SIGKILL as its parent-death signal, reports those that die, and stops them.
type supervisor struct {
	exe string // weft: the control plane and the apps
	// proxyExe is weft-proxy: the sidecars and the gateway.
	proxyExe string
	logs     string    // directory of NAME.log files
	verbose  io.Writer // if set, child output goes here prefixed by name, not to files
	log      *slog.Logger
	// reap: this process is a subreaper owned by this supervisor alone, so
	// stopAll also kills orphaned grandchildren adopted by it.
	reap bool

	mu    sync.Mutex
	procs []*child
	died  chan death
	// restart, once set, restarts a child that exits (as a kubelet restarts a
	// container) after a back-off, instead of only reporting it; stopping
	// turns it off for good.
	restart  bool
	stopping bool
	// backoff is the first restart delay, doubled per restart up to
	// maxBackoff and reset after a child ran for stable.
	backoff, maxBackoff, stable time.Duration
	// events gets one line per restart, for the user (nil: the log only).
	events io.Writer
}

type child struct {
	name     string
	exe      string
	args     []string
	env      []string // added to the demo's environment (secrets: never in args)
	cmd      *exec.Cmd
	done     chan struct{}
	restarts int
	started  time.Time
}

// death is a child that exited, with where its output went.
type death struct {
	name, log string
	err       error
}

func newSupervisor(exe, logs string, verbose io.Writer, log *slog.Logger) *supervisor {
	return &supervisor{exe: exe, logs: logs, verbose: verbose, log: log.With("component", "demo"), died: make(chan death, 64),
		backoff: time.Second, maxBackoff: 30 * time.Second, stable: time.Minute}
}

// start runs weft with args; its output goes to logs/NAME.log (or, verbose, prefixed to stderr).
func (s *supervisor) start(name string, args ...string) error { return s.startExe(name, s.exe, args) }

// startProxy is start for weft-proxy, with its join token in its
// environment (WEFT_JOIN_TOKEN), where other users cannot read it, unlike
// the command line.
func (s *supervisor) startProxy(name, token string, args ...string) error {
	return s.startExe(name, s.proxyExe, args, "WEFT_JOIN_TOKEN="+token)
}

func (s *supervisor) startExe(name, exe string, args []string, env ...string) error {
	c := &child{name: name, exe: exe, args: args, env: env}
	if err := s.launch(c); err != nil {
		return err
	}
	s.mu.Lock()
	s.procs = append(s.procs, c)
	s.mu.Unlock()
	return nil
}

// launch starts c's process and watches it: when it exits, the death is
// reported and, in restart mode, c is started again after its back-off.
func (s *supervisor) launch(c *child) error {
	var out io.WriteCloser
	logPath := filepath.Join(s.logs, c.name+".log")
	if s.verbose != nil {
		out, logPath = &prefixWriter{w: s.verbose, prefix: "[" + c.name + "] "}, "stderr"
	} else {
		// Appended, so a restarted process's log follows its last words.
		f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return fmt.Errorf("starting %s: %w", c.name, err)
		}
		out = f
	}
	cmd := exec.Command(c.exe, c.args...)
	if len(c.env) > 0 {
		cmd.Env = append(os.Environ(), c.env...)
	}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = 2 * time.Second // a grandchild holding the output pipe must not block Wait
	// Own process group: Ctrl-C reaches only the demo, which stops its children
	// in order; Pdeathsig kills a child if the demo itself is killed.
	cmd.SysProcAttr = childAttr()
	// Started under the lock, so stopAll sees either no restart or this
	// process, never a process it did not stop.
	s.mu.Lock()
	if s.stopping && c.cmd != nil {
		s.mu.Unlock()
		out.Close()
		return nil
	}
	if err := cmd.Start(); err != nil {
		s.mu.Unlock()
		out.Close()
		return fmt.Errorf("starting %s: %w", c.name, err)
	}
	done := make(chan struct{})
	c.cmd, c.done, c.started = cmd, done, time.Now()
	s.mu.Unlock()
	go func() {
		err := cmd.Wait()
		out.Close()
		close(done)
		select {
		case s.died <- death{name: c.name, log: logPath, err: err}:
		default:
		}
		s.maybeRestart(c, err)
	}()
	s.log.Debug("started", "process", c.name, "pid", cmd.Process.Pid)
	return nil
}

// restartMode turns restarting on: from now on a child that exits is
// started again, after 1 s, 2 s, 4 s … (at most maxBackoff; back to the
// first delay once a child has run for stable).
func (s *supervisor) restartMode(events io.Writer) {
	s.mu.Lock()
	s.restart, s.events = true, events
	s.mu.Unlock()
}

func (s *supervisor) maybeRestart(c *child, exitErr error) {
	s.mu.Lock()
	if !s.restart || s.stopping {
		s.mu.Unlock()
		return
	}
	if time.Since(c.started) >= s.stable {
		c.restarts = 0 // it had recovered: start the back-off over
	}
	delay := s.backoff << min(c.restarts, 16)
	if delay > s.maxBackoff || delay <= 0 {
		delay = s.maxBackoff
	}
	c.restarts++
	n, events := c.restarts, s.events
	s.mu.Unlock()
	s.log.Warn("process exited; restarting", "process", c.name, "err", exitErr, "restart", n, "in", delay)
	if events != nil {
		fmt.Fprintf(events, "weft demo: %s exited (%v); restart %d in %s\n", c.name, exitErr, n, delay)
	}
	time.AfterFunc(delay, func() {
		s.mu.Lock()
		stop := s.stopping
		s.mu.Unlock()
		if stop {
			return
		}
		if err := s.launch(c); err != nil {
			s.log.Error("restart failed", "process", c.name, "err", err)
			s.maybeRestart(c, err)
		}
	})
}

// Restarts returns how many times each child has been restarted since it
// last ran stably, by name.
func (s *supervisor) Restarts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.procs))
	for _, c := range s.procs {
		out[c.name] = c.restarts
	}
	return out
}

// stopAll stops every child but the first (the workloads and gateway), then
// the first (the control plane), so proxies never lose their control plane
// while they drain.
func (s *supervisor) stopAll(bound time.Duration) {
	s.mu.Lock()
	procs := s.procs
	s.procs = nil
	s.stopping = true
	s.mu.Unlock()
	if len(procs) > 0 {
		s.stop(procs[1:], bound)
		s.stop(procs[:1], bound)
	}
	if s.reap {
		if pids := killOrphans(); len(pids) > 0 {
			s.log.Warn("killed orphaned processes", "pids", pids)
		}
	}
}

// stop sends SIGTERM to each child's process group, waits up to bound for
// them to exit, then sends SIGKILL to the groups (which also catches any
// grandchild left behind) and waits for the children to be reaped.
func (s *supervisor) stop(children []*child, bound time.Duration) {
	type running struct {
		name string
		pid  int
		done chan struct{}
	}
	// Once stopping is set no child is started again: these are final.
	s.mu.Lock()
	procs := make([]running, 0, len(children))
	for _, c := range children {
		procs = append(procs, running{c.name, c.cmd.Process.Pid, c.done})
	}
	s.mu.Unlock()
	for _, p := range procs {
		_ = syscall.Kill(-p.pid, syscall.SIGTERM)
	}
	deadline := time.After(bound)
	for _, p := range procs {
		select {
		case <-p.done:
		case <-deadline:
			s.log.Warn("did not stop in time; killing", "process", p.name, "bound", bound)
		}
	}
	for _, p := range procs {
		_ = syscall.Kill(-p.pid, syscall.SIGKILL)
	}
	for _, p := range procs {
		<-p.done
	}
}

// prefixWriter writes whole lines, each prefixed, to w (shared by all children).
type prefixWriter struct {
	w      io.Writer
	prefix string
	buf    []byte
}

var prefixMu sync.Mutex

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.buf = append(p.buf, b...)
	for {
		i := bytes.IndexByte(p.buf, '\n')
		if i < 0 {
			return len(b), nil
		}
		p.emit(p.buf[:i+1])
		p.buf = p.buf[i+1:]
	}
}

func (p *prefixWriter) emit(line []byte) {
	prefixMu.Lock()
	defer prefixMu.Unlock()
	_, _ = io.WriteString(p.w, p.prefix)
	_, _ = p.w.Write(line)
}

// Close flushes a last unterminated line.
func (p *prefixWriter) Close() error {
	if len(p.buf) > 0 {
		p.emit(append(p.buf, '\n'))
		p.buf = nil
	}
	return nil
}
