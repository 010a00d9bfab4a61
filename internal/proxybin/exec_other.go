//go:build !unix

package proxybin

import (
	"errors"
	"fmt"
	"os"
	"os/exec"

	"github.com/weft-mesh/weft/internal/cmdline"
)

// Exec runs weft-proxy at path with args as a child with this process's
// standard streams (this system cannot replace a process) and returns its
// exit code as a *cmdline.ExitCodeError.
func Exec(path string, args []string) error {
	cmd := exec.Command(path, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return &cmdline.ExitCodeError{Code: ee.ExitCode()}
	}
	if err != nil {
		return fmt.Errorf("running %s: %w", path, err)
	}
	return nil
}
