package e2e

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// checkDataPlaneBinary checks that the demo's sidecars and gateway are
// weft-proxy processes (weft execs it for run and gateway) while the
// control plane and the apps are weft.
func checkDataPlaneBinary(t *testing.T, m *mesh) {
	t.Helper()
	kids := children(t, m.demo.cmd.Process.Pid)
	roles := map[string]int{}
	for _, pid := range kids {
		exe, argv := procExe(pid), procArgs(pid)
		if len(argv) < 2 {
			continue
		}
		role := filepath.Base(exe) + " " + argv[1]
		roles[role]++
		if filepath.Base(exe) == "weft-proxy" {
			t.Logf("%s (pid %d): %s", role, pid, memLine(pid))
			for _, app := range children(t, pid) {
				if a := procArgs(app); filepath.Base(procExe(app)) != "weft" || len(a) < 2 || a[1] != "bookinfo" {
					t.Errorf("the app of sidecar %d is %s %q, want weft bookinfo", pid, procExe(app), a)
				}
			}
		}
	}
	want := map[string]int{"weft control-plane": 1, "weft-proxy gateway": 1, "weft-proxy run": 6}
	for role, n := range want {
		if roles[role] != n {
			t.Errorf("the demo runs %d × %s, want %d (all its children: %v)", roles[role], role, n, roles)
		}
	}
}

// children lists the PIDs whose parent is pid.
func children(t *testing.T, pid int) []int {
	t.Helper()
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid …; comm may hold spaces and parentheses.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			child, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
			out = append(out, child)
		}
	}
	return out
}

func procExe(pid int) string {
	exe, _ := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe")
	return exe
}

func procArgs(pid int) []string {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	return strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
}

// memLine is the process's peak and current RSS with its file and anon parts.
func memLine(pid int) string {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	var parts []string
	for _, l := range strings.Split(string(b), "\n") {
		for _, k := range []string{"VmHWM:", "VmRSS:", "RssAnon:", "RssFile:"} {
			if strings.HasPrefix(l, k) {
				parts = append(parts, strings.Join(strings.Fields(l), " "))
			}
		}
	}
	return strings.Join(parts, ", ")
}
