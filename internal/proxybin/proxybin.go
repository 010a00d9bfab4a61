// Package proxybin finds weft-proxy, the data plane's own binary, for the
// weft CLI: weft execs it for the sidecar, gateway and iptables commands
// and the demo starts it beside every app, so no sidecar carries the
// control plane, the Kubernetes clients or the console.
//
// It looks next to the running weft first (an install or a release puts
// both there), then in weft's source tree, building weft-proxy from it once
// per weft build into the user's cache directory (so `go run ./cmd/weft
// demo` on a fresh clone works and never runs a stale proxy), then on PATH.
package proxybin

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// Name is the data plane binary's file name.
const Name = "weft-proxy"

// module is the module weft's source tree declares in its go.mod.
const module = "github.com/weft-mesh/weft"

// Finder locates weft-proxy. Its zero value looks as weft does; tests set
// the fields.
type Finder struct {
	// Executable is the running weft binary (default os.Executable()).
	Executable string
	// SourceRoot is weft's module directory ("" = the one this binary was
	// built from, if it still exists; "-" = none).
	SourceRoot string
	// CacheDir holds weft-proxy builds (default $XDG_CACHE_HOME/weft).
	CacheDir string
	// Progress gets a line before a build, which takes a while.
	Progress io.Writer
}

// Find returns the path of the weft-proxy to run.
func (f Finder) Find(ctx context.Context) (string, error) {
	exe := f.Executable
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return "", fmt.Errorf("finding %s: locating weft itself: %w", Name, err)
		}
	}
	if real, err := filepath.EvalSymlinks(exe); err == nil {
		exe = real
	}
	beside := filepath.Join(filepath.Dir(exe), Name+exeSuffix())
	if isExecutable(beside) {
		return beside, nil
	}
	root := f.SourceRoot
	if root == "" {
		root = builtFrom()
	}
	if root != "-" && isSourceRoot(root) {
		return f.build(ctx, root, exe)
	}
	if p, err := exec.LookPath(Name); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%s is neither next to %s nor on PATH: install both (go install %s/cmd/...)", Name, exe, module)
}

// build builds weft-proxy from root into the cache, once per weft binary:
// the key is a hash of weft's own content, which changes whenever `go run`
// rebuilt weft from an edited tree.
func (f Finder) build(ctx context.Context, root, exe string) (string, error) {
	key, err := fileHash(exe)
	if err != nil {
		return "", fmt.Errorf("building %s: %w", Name, err)
	}
	dir := f.CacheDir
	if dir == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			base = os.TempDir()
		}
		dir = filepath.Join(base, "weft")
	}
	out := filepath.Join(dir, Name+"-"+key+exeSuffix())
	if isExecutable(out) {
		return out, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("building %s: %w", Name, err)
	}
	if f.Progress != nil {
		fmt.Fprintf(f.Progress, "weft: building %s from %s (once per weft build)…\n", Name, root)
	}
	// Build under a temporary name and rename: a concurrent weft may be
	// building the same key, and neither may run a half-written file.
	tmp := filepath.Join(dir, fmt.Sprintf(".%s-%s-%d", Name, key, os.Getpid()))
	cmd := exec.CommandContext(ctx, "go", "build", "-o", tmp, "./cmd/"+Name)
	cmd.Dir = root // weft's own build settings: its compiled packages are reused
	if msg, err := cmd.CombinedOutput(); err != nil {
		_ = os.Remove(tmp)
		return "", fmt.Errorf("building %s in %s: %w\n%s", Name, root, err, msg)
	}
	if err := os.Rename(tmp, out); err != nil {
		_ = os.Remove(tmp)
		return "", fmt.Errorf("building %s: %w", Name, err)
	}
	pruneOld(dir, out)
	return out, nil
}

// pruneOld removes builds other than keep not used for a week, so editing
// and rerunning the tree does not fill the cache.
func pruneOld(dir, keep string) {
	old, _ := filepath.Glob(filepath.Join(dir, Name+"-*"))
	for _, p := range old {
		if st, err := os.Stat(p); err == nil && p != keep && time.Since(st.ModTime()) > 7*24*time.Hour {
			_ = os.Remove(p)
		}
	}
}

// builtFrom is the module directory this binary was compiled from, read
// from this file's compile-time path ("" when built with -trimpath).
func builtFrom() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok || !filepath.IsAbs(file) {
		return ""
	}
	return filepath.Dir(filepath.Dir(filepath.Dir(file))) // internal/proxybin/proxybin.go
}

// isSourceRoot reports whether dir holds weft's go.mod and weft-proxy's main.
func isSourceRoot(dir string) bool {
	mod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return false
	}
	first, _, _ := strings.Cut(string(mod), "\n")
	if strings.TrimSpace(first) != "module "+module {
		return false
	}
	_, err = os.Stat(filepath.Join(dir, "cmd", Name, "main.go"))
	return err == nil
}

func fileHash(path string) (string, error) {
	file, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer file.Close()
	h := sha256.New()
	if _, err := io.Copy(h, file); err != nil {
		return "", fmt.Errorf("hashing %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

func isExecutable(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular() && (runtime.GOOS == "windows" || st.Mode().Perm()&0o111 != 0)
}

func exeSuffix() string {
	if runtime.GOOS == "windows" {
		return ".exe"
	}
	return ""
}
