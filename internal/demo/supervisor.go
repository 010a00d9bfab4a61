package demo

import (
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// supervisor starts child processes and stops them all, in reverse order.
type supervisor struct {
	exe  string
	logs string
	log  *slog.Logger

	mu    sync.Mutex
	procs []*child
	died  chan death
}

type child struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
}

type death struct {
	name, log string
	err       error
}

func newSupervisor(exe, logs string, log *slog.Logger) *supervisor {
	return &supervisor{exe: exe, logs: logs, log: log.With("component", "demo"), died: make(chan death, 16)}
}

// start runs exe with args; its output goes to logs/NAME.log.
func (s *supervisor) start(name string, args ...string) error {
	logPath := filepath.Join(s.logs, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return err
	}
	cmd := exec.Command(s.exe, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("starting %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, done: make(chan struct{})}
	s.mu.Lock()
	s.procs = append(s.procs, c)
	s.mu.Unlock()
	go func() {
		err := cmd.Wait()
		f.Close()
		close(c.done)
		select {
		case s.died <- death{name: name, log: logPath, err: err}:
		default:
		}
	}()
	s.log.Debug("started", "process", name, "pid", cmd.Process.Pid)
	return nil
}

// stopAll sends SIGTERM to every process group, newest first, and SIGKILL after the bound.
func (s *supervisor) stopAll(bound time.Duration) {
	s.mu.Lock()
	procs := s.procs
	s.procs = nil
	s.mu.Unlock()
	// Stop the workloads and gateway first, then the control plane.
	for i := len(procs) - 1; i >= 0; i-- {
		_ = syscall.Kill(-procs[i].cmd.Process.Pid, syscall.SIGTERM)
		if i == 1 {
			waitAll(procs[1:], bound)
		}
	}
	waitAll(procs, bound)
	for _, p := range procs {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	}
}

func waitAll(procs []*child, bound time.Duration) {
	deadline := time.After(bound)
	for _, p := range procs {
		select {
		case <-p.done:
		case <-deadline:
			return
		}
	}
}
