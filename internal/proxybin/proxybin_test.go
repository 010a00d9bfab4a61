package proxybin

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// writeFile writes body to dir/name, making its directories.
func writeFile(t *testing.T, dir, name, body string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), mode); err != nil {
		t.Fatal(err)
	}
	return p
}

// fakeTree is a source tree of module weft whose weft-proxy prints hello.
func fakeTree(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	writeFile(t, root, "go.mod", "module "+module+"\n\ngo 1.22\n", 0o644)
	writeFile(t, root, "cmd/weft-proxy/main.go", "package main\n\nfunc main() { println(\"hello\") }\n", 0o644)
	return root
}

func TestFindBeside(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	exe := writeFile(t, dir, "weft", "weft", 0o755)
	want := writeFile(t, dir, Name, "proxy", 0o755)
	got, err := Finder{Executable: exe, SourceRoot: fakeTree(t), CacheDir: t.TempDir()}.Find(context.Background())
	if err != nil || got != want {
		t.Fatalf("Find() = %q, %v; want %q (beside weft wins over the source tree)", got, err, want)
	}
}

func TestFindBuildsFromSourceOncePerWeftBuild(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go toolchain")
	}
	t.Parallel()
	root, cache := fakeTree(t), t.TempDir()
	exe := writeFile(t, t.TempDir(), "weft", "weft build 1", 0o755)
	var progress strings.Builder
	f := Finder{Executable: exe, SourceRoot: root, CacheDir: cache, Progress: &progress}
	first, err := f.Find(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(first).CombinedOutput(); err != nil || !strings.Contains(string(out), "hello") {
		t.Fatalf("the built %s printed %q, %v", first, out, err)
	}
	if !strings.Contains(progress.String(), "building "+Name) {
		t.Errorf("progress %q, want a line saying it builds", progress.String())
	}
	// The same weft again: the cached build, not a new one (the tree no
	// longer compiles).
	writeFile(t, root, "cmd/weft-proxy/main.go", "package main\n\nfunc main() { broken }\n", 0o644)
	if again, err := f.Find(context.Background()); err != nil || again != first {
		t.Fatalf("second Find() = %q, %v; want the cached %q", again, err, first)
	}
	// Another weft build: another key, so a build (which now fails).
	writeFile(t, filepath.Dir(exe), "weft", "weft build 2", 0o755)
	if _, err := f.Find(context.Background()); err == nil || !strings.Contains(err.Error(), "building "+Name) {
		t.Fatalf("Find() after weft changed = %v, want a build error (the tree no longer compiles)", err)
	}
}

func TestFindOnPath(t *testing.T) {
	bin := t.TempDir()
	want := writeFile(t, bin, Name, "proxy", 0o755)
	t.Setenv("PATH", bin)
	exe := writeFile(t, t.TempDir(), "weft", "weft", 0o755)
	got, err := Finder{Executable: exe, SourceRoot: "-"}.Find(context.Background())
	if err != nil || got != want {
		t.Fatalf("Find() = %q, %v; want %q from PATH", got, err, want)
	}
	t.Setenv("PATH", t.TempDir())
	if _, err := (Finder{Executable: exe, SourceRoot: "-"}).Find(context.Background()); err == nil || !strings.Contains(err.Error(), "nor on PATH") {
		t.Fatalf("Find() with no weft-proxy anywhere = %v, want an error naming where it looked", err)
	}
}

func TestIsSourceRoot(t *testing.T) {
	t.Parallel()
	other := t.TempDir()
	writeFile(t, other, "go.mod", "module example.com/other\n", 0o644)
	writeFile(t, other, "cmd/weft-proxy/main.go", "package main\n", 0o644)
	noMain := t.TempDir()
	writeFile(t, noMain, "go.mod", "module "+module+"\n", 0o644)
	tests := []struct {
		name, dir string
		want      bool
	}{
		{"weft's tree", fakeTree(t), true},
		{"another module", other, false},
		{"no weft-proxy main", noMain, false},
		{"no go.mod", t.TempDir(), false},
	}
	for _, tt := range tests {
		if got := isSourceRoot(tt.dir); got != tt.want {
			t.Errorf("%s: isSourceRoot = %v, want %v", tt.name, got, tt.want)
		}
	}
	if root := builtFrom(); !isSourceRoot(root) {
		t.Errorf("builtFrom() = %q, not weft's tree (this test runs from it)", root)
	}
}
