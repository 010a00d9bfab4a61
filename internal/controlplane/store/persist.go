package store

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/weft-mesh/weft/internal/config"
)

// Persisted layout: DATA_DIR/config/<escaped source>.yaml holds every object
// of one source (e.g. api.yaml, auto-registration.yaml) as Istio YAML, after
// a first line "# weft source: <quoted source>". Each file is replaced
// atomically (temp file + rename), so a crash leaves the old or new file.
// Objects read from watched config directories or from Kubernetes are not
// persisted: their files (the cluster) are the truth and are read again at start.
const (
	configSubdir = "config"
	sourceHeader = "# weft source: "
)

// persist writes the files of the sources touched by changed, from objs.
// Called with m.mu held.
func (m *Mem) persist(objs map[config.Key]*config.Object, changed []change) error {
	if m.dataDir == "" {
		return nil
	}
	sources := map[string]bool{}
	for _, c := range changed {
		for _, o := range []*config.Object{c.old, c.new} {
			if o != nil && !m.fileSources[o.Source] && o.Source != SourceKubernetes {
				sources[o.Source] = true
			}
		}
	}
	dir := filepath.Join(m.dataDir, configSubdir)
	if len(sources) > 0 {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("persisting config: %w", err)
		}
	}
	for src := range sources {
		var of []*config.Object
		for _, o := range objs {
			if o.Source == src {
				of = append(of, o)
			}
		}
		if err := writeSource(dir, src, of); err != nil {
			return err
		}
	}
	return nil
}

// writeSource replaces the file of one source, or removes it when empty.
func writeSource(dir, src string, objs []*config.Object) error {
	path := filepath.Join(dir, sourceFileName(src))
	if len(objs) == 0 {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("persisting config of %q: %w", src, err)
		}
		return nil
	}
	sortObjects(objs)
	body, err := config.Marshal(objs)
	if err != nil {
		return fmt.Errorf("persisting config of %q: %w", src, err)
	}
	data := append([]byte(sourceHeader+strconv.Quote(src)+"\n"), body...)
	if err := writeFileAtomic(path, data); err != nil {
		return fmt.Errorf("persisting config of %q: %w", src, err)
	}
	return nil
}

// sourceFileName turns a source into a safe file name.
func sourceFileName(src string) string {
	name := url.PathEscape(src)
	name = strings.ReplaceAll(name, ".", "%2E") // no "..", no hidden files
	if len(name) > 200 {
		sum := sha256.Sum256([]byte(src))
		name = hex.EncodeToString(sum[:16])
	}
	return name + ".yaml"
}

// writeFileAtomic writes data to a temporary file beside path, syncs it and
// renames it over path.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // a no-op after a successful rename
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil { // make the rename durable
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// loadDataDir reads every persisted source file.
func loadDataDir(dataDir string) ([]*config.Object, error) {
	dir := filepath.Join(dataDir, configSubdir)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("loading persisted config: %w", err)
	}
	var all []*config.Object
	seen := map[config.Key]string{}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".yaml") || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("loading persisted config: %w", err)
		}
		objs, err := config.Parse(path, data)
		if err != nil {
			return nil, fmt.Errorf("loading persisted config (fix or remove the file): %w", err)
		}
		src := sourceOf(data, e.Name())
		for _, o := range objs {
			if prev, dup := seen[o.Key()]; dup {
				return nil, fmt.Errorf("loading persisted config: %s is in both %s and %s", o.Key(), prev, path)
			}
			seen[o.Key()] = path
			o.Source = src
		}
		all = append(all, objs...)
	}
	return all, nil
}

// sourceOf reads a persisted file's source from its header, falling back to
// its unescaped file name.
func sourceOf(data []byte, name string) string {
	line, _, _ := bufio.NewReader(bytes.NewReader(data)).ReadLine()
	if rest, ok := strings.CutPrefix(string(line), sourceHeader); ok {
		if s, err := strconv.Unquote(rest); err == nil {
			return s
		}
	}
	base := strings.TrimSuffix(name, ".yaml")
	if s, err := url.PathUnescape(base); err == nil {
		return s
	}
	return base
}
