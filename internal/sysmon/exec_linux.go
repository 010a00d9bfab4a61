package sysmon

import (
	"fmt"
	"os"
	"syscall"
)

func reexec(env []string) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("sysmon: finding the executable: %w", err)
	}
	if err := syscall.Exec(exe, os.Args, env); err != nil {
		return fmt.Errorf("sysmon: re-executing %s: %w", exe, err)
	}
	return nil
}
