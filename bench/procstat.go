package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// usage is what the kernel counts for a set of processes: CPU, syscalls
// (read-side and write-side, from /proc/PID/io) and context switches of
// every thread.
type usage struct {
	ticks    int64 // utime+stime, clock ticks
	syscr    int64 // read-family syscalls
	syscw    int64 // write-family syscalls
	vcsw     int64 // voluntary context switches
	nvcsw    int64 // involuntary context switches
	hwm      int64 // largest VmHWM, bytes
	rssFile  int64 // RssFile of that process, bytes
	rssAnon  int64 // RssAnon of that process, bytes
	syscalls int64 // every syscall, from perf's raw_syscalls:sys_enter (-1: unknown)
	// partial: threads started during the run, which perf (attached to
	// the threads there were at the start) did not count: syscalls is a
	// lower bound.
	partial bool
}

// sub returns the counters of u minus those of before; the memory figures
// (peaks and current RSS) are u's.
func (u usage) sub(before usage) usage {
	u.ticks -= before.ticks
	u.syscr -= before.syscr
	u.syscw -= before.syscw
	u.vcsw -= before.vcsw
	u.nvcsw -= before.nvcsw
	return u
}

// sample reads the counters of every process in the given process groups.
func sample(groups []int) usage {
	var u usage
	for _, g := range groups {
		for _, pid := range group(g) {
			u.ticks += cpuTicks(pid)
			io := procFields(fmt.Sprintf("/proc/%d/io", pid))
			u.syscr += io["syscr"]
			u.syscw += io["syscw"]
			tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
			for _, t := range tasks {
				st := procFields(fmt.Sprintf("/proc/%d/task/%s/status", pid, t.Name()))
				u.vcsw += st["voluntary_ctxt_switches"]
				u.nvcsw += st["nonvoluntary_ctxt_switches"]
			}
			st := procFields(fmt.Sprintf("/proc/%d/status", pid))
			if hwm := st["VmHWM"] * 1024; hwm > u.hwm {
				u.hwm, u.rssFile, u.rssAnon = hwm, st["RssFile"]*1024, st["RssAnon"]*1024
			}
		}
	}
	return u
}

// procFields parses a /proc file of "Name: value [kB]" lines.
func procFields(path string) map[string]int64 {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	m := map[string]int64{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		if n, err := strconv.ParseInt(f[0], 10, 64); err == nil {
			m[name] = n
		}
	}
	return m
}

// perfCounter counts every syscall of a set of processes with perf's
// raw_syscalls:sys_enter tracepoint, when perf works on this machine.
type perfCounter struct {
	cmd  *exec.Cmd
	out  string
	tids map[string]bool // the threads perf attached to
}

// threads lists the thread IDs of every process in groups.
func threads(groups []int) map[string]bool {
	tids := map[string]bool{}
	for _, g := range groups {
		for _, pid := range group(g) {
			ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
			for _, e := range ents {
				tids[e.Name()] = true
			}
		}
	}
	return tids
}

// missed reports whether groups now have threads perf was not attached to.
func (p *perfCounter) missed(groups []int) bool {
	if p == nil {
		return false
	}
	for tid := range threads(groups) {
		if !p.tids[tid] {
			return true
		}
	}
	return false
}

// perfWorks reports whether perf can count tracepoints here.
func perfWorks() bool {
	if _, err := exec.LookPath("perf"); err != nil {
		return false
	}
	out, err := exec.Command("perf", "stat", "-x,", "-e", "raw_syscalls:sys_enter", "--", "true").CombinedOutput()
	return err == nil && !strings.Contains(string(out), "not supported") && !strings.Contains(string(out), "not counted")
}

// startPerf starts counting the syscalls of every process in groups.
func startPerf(dir string, groups []int) *perfCounter {
	var pids []string
	for _, g := range groups {
		for _, pid := range group(g) {
			pids = append(pids, strconv.Itoa(pid))
		}
	}
	if len(pids) == 0 {
		return nil
	}
	p := &perfCounter{out: filepath.Join(dir, fmt.Sprintf("perf-%d.csv", time.Now().UnixNano())), tids: threads(groups)}
	p.cmd = exec.Command("perf", "stat", "-x,", "-o", p.out, "-e", "raw_syscalls:sys_enter", "-p", strings.Join(pids, ","))
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		return nil
	}
	return p
}

// stop ends counting and returns the count (-1 when unknown).
func (p *perfCounter) stop(ctx context.Context) int64 {
	if p == nil {
		return -1
	}
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-done
	case <-ctx.Done():
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
	data, err := os.ReadFile(p.out)
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Split(l, ",")
		if len(f) >= 3 && strings.Contains(l, "raw_syscalls:sys_enter") {
			if n, err := strconv.ParseInt(f[0], 10, 64); err == nil {
				return n
			}
		}
	}
	return -1
}
