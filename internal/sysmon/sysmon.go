// Package sysmon keeps the Go runtime's system monitor (sysmon) from
// waking a busy proxy every 20 µs.
//
// Whenever every P of a process goes idle (a proxy waiting in epoll for
// its next packet), sysmon goes to a deep sleep, and the first syscall
// after it wakes sysmon with its polling interval reset to 20 µs. A proxy
// under load alternates between idle and busy thousands of times a
// second, so sysmon keeps polling at 20 µs: on a shared core each poll is
// a context switch away from the proxy. Profiles of a sidecar at
// saturation put 7 % of its CPU in those switches, and it had 3 context
// switches per request where nginx has one.
//
// The runtime skips the deep sleep while GODEBUG=schedtrace is set, and
// then sysmon backs off to 10 ms polls as long as it finds nothing to do.
// With the longest period (2147483647 ms, 24.8 days) the trace itself is
// never printed, except one line at start on a machine up longer than
// that. The variable is read only when a process starts, so Reexec
// replaces the process with itself (same PID) with it set.
// GODEBUG=schedtrace=0 in the environment keeps the runtime's default.
package sysmon

import (
	"os"
	"strings"
)

// Setting is the GODEBUG setting Reexec adds.
const Setting = "schedtrace=2147483647"

// Env returns environ with Setting added to GODEBUG, and whether it
// changed anything: a GODEBUG that already names schedtrace is left as
// the user set it.
func Env(environ []string) ([]string, bool) {
	out := make([]string, 0, len(environ)+1)
	found := false
	for _, kv := range environ {
		v, ok := strings.CutPrefix(kv, "GODEBUG=")
		if !ok {
			out = append(out, kv)
			continue
		}
		if found {
			continue // a duplicate: the first one is the one getenv reads
		}
		found = true
		for _, s := range strings.Split(v, ",") {
			if strings.HasPrefix(strings.TrimSpace(s), "schedtrace=") {
				return environ, false
			}
		}
		if v == "" {
			kv = "GODEBUG=" + Setting
		} else {
			kv = "GODEBUG=" + v + "," + Setting
		}
		out = append(out, kv)
	}
	if !found {
		out = append(out, "GODEBUG="+Setting)
	}
	return out, true
}

// Reexec replaces the running program with itself, same arguments and
// PID, with Setting in GODEBUG, when that changes the environment. It
// must run before the program starts anything. It returns only when it
// did not replace the process: the setting was there already, or exec is
// not possible here (the error says why).
func Reexec() error {
	env, changed := Env(os.Environ())
	if !changed {
		return nil
	}
	return reexec(env)
}
