package kubeauth

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/weft-mesh/weft/test/kubeapi"
)

// api is the package's kube-apiserver.
var api *kubeapi.Server

// weftBin is the weft binary built once for the package.
var weftBin string

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "weft-kubeauth-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "kubeauth:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	// The control plane leaves its admin credentials here, not in ~/.weft.
	if err := os.Setenv("WEFT_HOME", filepath.Join(dir, "home")); err != nil {
		fmt.Fprintln(os.Stderr, "kubeauth:", err)
		return 1
	}
	weftBin = filepath.Join(dir, "weft")
	build := exec.Command("go", "build", "-o", weftBin, "../../cmd/weft")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "kubeauth: building weft:", err)
		return 1
	}
	return kubeapi.Main(m, &api)
}
