package proxycli

import "syscall"

// appAttr puts `weft run`'s app in its own process group and has the kernel
// kill it if weft run itself dies, so no app outlives its sidecar.
func appAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
