package store

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/weft-mesh/weft/internal/config"
)

// Watch timings: events are coalesced for eventDelay (editors write in
// several steps); the directory is also rescanned every pollEvery, or
// pollFallback when file notifications are unavailable.
const (
	eventDelay   = 50 * time.Millisecond
	pollEvery    = 2 * time.Second
	pollFallback = 500 * time.Millisecond
)

// WatchDir loads every *.yaml and *.yml file under dir (recursively; hidden
// files and directories are skipped) and keeps watching it until ctx ends or
// Close is called. Objects from a file are owned by it: editing the file
// updates them, removing an object from the file or deleting the file deletes
// it. A file that does not parse or validate is logged (file, object, field,
// reason) and its last good objects stay. Non-Istio documents (Kubernetes
// Services, Deployments) are skipped. WatchDir returns after the first load.
func (m *Mem) WatchDir(ctx context.Context, dir string) error {
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("watching config dir: %w", err)
	}
	if !st.IsDir() {
		return fmt.Errorf("watching config dir: %s is not a directory", dir)
	}
	w := &dirWatch{m: m, dir: dir, log: m.log.With("dir", dir), files: map[string]*fileState{}}
	fsw, err := fsnotify.NewWatcher()
	if err == nil && m.pollOnly {
		fsw.Close()
		fsw, err = nil, errors.New("disabled by the test")
	}
	if err != nil {
		w.log.Warn("file notifications unavailable; polling", "every", pollFallback, "error", err)
		fsw = nil
	}
	w.fsw = fsw
	w.scan()
	ctx, cancel := context.WithCancel(ctx)
	m.watchMu.Lock()
	m.cancels = append(m.cancels, cancel)
	m.wg.Add(1)
	m.watchMu.Unlock()
	go func() {
		defer m.wg.Done()
		w.run(ctx)
	}()
	return nil
}

// dirWatch is the state of one watched directory.
type dirWatch struct {
	m     *Mem
	dir   string
	log   *slog.Logger
	fsw   *fsnotify.Watcher
	files map[string]*fileState // by path; only the run goroutine touches it after the first scan
}

// fileState is what was last read from one file.
type fileState struct {
	hash [sha256.Size]byte // of the last content read, good or bad
	keys []config.Key      // objects of the last good content
}

// run rescans on file events and on a timer until ctx ends.
func (w *dirWatch) run(ctx context.Context) {
	every := pollFallback
	var events <-chan fsnotify.Event
	var errs <-chan error
	if w.fsw != nil {
		defer w.fsw.Close()
		every, events, errs = pollEvery, w.fsw.Events, w.fsw.Errors
	}
	poll := time.NewTicker(every)
	defer poll.Stop()
	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-events:
			debounce.Reset(eventDelay)
		case err := <-errs:
			w.log.Warn("file notification error; rescanning", "error", err)
			debounce.Reset(eventDelay)
		case <-debounce.C:
			w.scan()
		case <-poll.C:
			w.scan()
		}
	}
}

// scan reads every config file and applies what changed.
func (w *dirWatch) scan() {
	present := map[string]bool{}
	err := filepath.WalkDir(w.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path == w.dir {
				return err
			}
			w.log.Warn("cannot read config path", "path", path, "error", err)
			return nil
		}
		hidden := strings.HasPrefix(d.Name(), ".") && path != w.dir
		if d.IsDir() {
			if hidden {
				return filepath.SkipDir
			}
			if w.fsw != nil {
				_ = w.fsw.Add(path) // idempotent; new subdirectories get watched here
			}
			return nil
		}
		if hidden || !(strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml")) {
			return nil
		}
		present[path] = true
		w.readFile(path)
		return nil
	})
	if err != nil {
		w.log.Error("cannot scan config dir", "error", err)
		return // keep everything: the directory may be briefly unavailable
	}
	for path := range w.files {
		if !present[path] {
			w.removeFile(path)
		}
	}
}

// readFile parses one file if its content changed and applies its objects.
func (w *dirWatch) readFile(path string) {
	data, err := os.ReadFile(path)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			w.log.Error("cannot read config file; keeping its last good objects", "file", path, "error", err)
		}
		return
	}
	st := w.files[path]
	if st == nil {
		st = &fileState{}
		w.files[path] = st
	}
	sum := sha256.Sum256(data)
	if sum == st.hash {
		return
	}
	st.hash = sum
	objs, err := config.ParseWith(path, data, config.ParseOptions{SkipForeign: true})
	if err == nil {
		err = w.sync(path, st, objs)
	}
	if err != nil {
		w.log.Error("config file rejected; keeping its last good objects", "file", path, "error", err)
		return
	}
	w.log.Info("config file loaded", "file", path, "objects", len(objs))
}

// removeFile deletes the objects of a file that is gone.
func (w *dirWatch) removeFile(path string) {
	if err := w.sync(path, w.files[path], nil); err != nil {
		w.log.Error("cannot delete the objects of a removed config file", "file", path, "error", err)
		return
	}
	delete(w.files, path)
	w.m.mu.Lock()
	delete(w.m.fileSources, path)
	w.m.mu.Unlock()
	w.log.Info("config file removed", "file", path)
}

// sync makes the store hold exactly objs for the file: new and changed
// objects are stored and objects the file no longer has are deleted, as one change.
func (w *dirWatch) sync(path string, st *fileState, objs []*config.Object) error {
	keep := map[config.Key]bool{}
	for _, o := range objs {
		keep[o.Key()] = true
		o.Source = path
	}
	m := w.m
	m.mu.Lock()
	for _, o := range objs {
		if cur, ok := m.objs[o.Key()]; ok && cur.Source != path && m.fileSources[cur.Source] {
			m.mu.Unlock()
			return fmt.Errorf("%s: %s is already defined in %s", path, o.Key(), cur.Source)
		}
	}
	var dels []config.Key
	for _, k := range st.keys {
		if cur, ok := m.objs[k]; ok && !keep[k] && cur.Source == path {
			dels = append(dels, k)
		}
	}
	m.fileSources[path] = true
	m.mu.Unlock()
	if _, _, err := m.commitBy("", objs, dels); err != nil {
		return err
	}
	st.keys = st.keys[:0]
	for _, o := range objs {
		st.keys = append(st.keys, o.Key())
	}
	return nil
}
