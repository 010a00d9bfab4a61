//go:build !linux

package proxycli

import "syscall"

// appAttr puts `weft run`'s app in its own process group.
func appAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
