package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// weftBin is the weft binary built once for the whole suite; weft-proxy,
// which weft execs for its data-plane commands, is built beside it.
var weftBin, proxyBin string

func TestMain(m *testing.M) {
	serveEcho() // the test binary as an app (capture_test.go)
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "weft-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	// The control planes leave their admin credentials in WEFT_HOME, where
	// the CLI finds them, as in a user's ~/.weft: the suite's own.
	if err := os.Setenv("WEFT_HOME", filepath.Join(dir, "home")); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	weftBin, proxyBin = filepath.Join(dir, "weft"), filepath.Join(dir, "weft-proxy")
	build := exec.Command("go", "build", "-o", dir+string(filepath.Separator), "../../cmd/weft", "../../cmd/weft-proxy")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: building weft:", err)
		return 1
	}
	return m.Run()
}
