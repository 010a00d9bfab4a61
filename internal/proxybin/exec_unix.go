//go:build unix

package proxybin

import (
	"fmt"
	"os"
	"syscall"
)

// Exec replaces this process with weft-proxy at path running args (its
// subcommand and flags), keeping the PID, the environment, the open
// standard streams and the signals a supervisor or kubelet sends. It
// returns only when the exec failed.
func Exec(path string, args []string) error {
	argv := append([]string{path}, args...)
	if err := syscall.Exec(path, argv, os.Environ()); err != nil {
		return fmt.Errorf("exec %s: %w", path, err)
	}
	return nil
}
