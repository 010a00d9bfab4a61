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
}

type child struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
}

// death is a child that exited, with where its output went.
type death struct {
	name, log string
	err       error
}

func newSupervisor(exe, logs string, verbose io.Writer, log *slog.Logger) *supervisor {
	return &supervisor{exe: exe, logs: logs, verbose: verbose, log: log.With("component", "demo"), died: make(chan death, 64)}
}

// start runs weft with args; its output goes to logs/NAME.log (or, verbose, prefixed to stderr).
func (s *supervisor) start(name string, args ...string) error { return s.startExe(name, s.exe, args) }

// startProxy is start for weft-proxy.
func (s *supervisor) startProxy(name string, args ...string) error {
	return s.startExe(name, s.proxyExe, args)
}

func (s *supervisor) startExe(name, exe string, args []string) error {
	var out io.WriteCloser
	logPath := filepath.Join(s.logs, name+".log")
	if s.verbose != nil {
		out, logPath = &prefixWriter{w: s.verbose, prefix: "[" + name + "] "}, "stderr"
	} else {
		f, err := os.Create(logPath)
		if err != nil {
			return fmt.Errorf("starting %s: %w", name, err)
		}
		out = f
	}
	cmd := exec.Command(exe, args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = 2 * time.Second // a grandchild holding the output pipe must not block Wait
	// Own process group: Ctrl-C reaches only the demo, which stops its children
	// in order; Pdeathsig kills a child if the demo itself is killed.
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		out.Close()
		return fmt.Errorf("starting %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, done: make(chan struct{})}
	s.mu.Lock()
	s.procs = append(s.procs, c)
	s.mu.Unlock()
	go func() {
		err := cmd.Wait()
		out.Close()
		close(c.done)
		select {
		case s.died <- death{name: name, log: logPath, err: err}:
		default:
		}
	}()
	s.log.Debug("started", "process", name, "pid", cmd.Process.Pid)
	return nil
}

// stopAll stops every child but the first (the workloads and gateway), then
// the first (the control plane), so proxies never lose their control plane
// while they drain.
func (s *supervisor) stopAll(bound time.Duration) {
	s.mu.Lock()
	procs := s.procs
	s.procs = nil
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
func (s *supervisor) stop(procs []*child, bound time.Duration) {
	for _, p := range procs {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
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
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
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
