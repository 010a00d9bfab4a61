package store

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	networking "istio.io/api/networking/v1alpha3"

	"github.com/weft-mesh/weft/internal/config"
)

// logRecorder keeps every log record's message and attributes as text.
type logRecorder struct {
	mu    sync.Mutex
	lines []string
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *logRecorder) WithGroup(string) slog.Handler            { return r }
func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	var b strings.Builder
	b.WriteString(rec.Message)
	rec.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + a.String())
		return true
	})
	r.mu.Lock()
	r.lines = append(r.lines, b.String())
	r.mu.Unlock()
	return nil
}

// find returns the first line containing every one of subs.
func (r *logRecorder) find(subs ...string) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, l := range r.lines {
		all := true
		for _, s := range subs {
			all = all && strings.Contains(l, s)
		}
		if all {
			return l, true
		}
	}
	return "", false
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// subscribed returns a function reporting the keys the last notification saw.
func subscribed(m *Mem) func() []string {
	var mu sync.Mutex
	seen := []string{}
	m.Subscribe(func(int64) {
		_, objs := m.Snapshot()
		mu.Lock()
		seen = names(objs)
		mu.Unlock()
	})
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return seen
	}
}

func TestWatchDir(t *testing.T) {
	for _, pollOnly := range []bool{false, true} {
		t.Run(map[bool]string{false: "notify", true: "poll"}[pollOnly], func(t *testing.T) {
			t.Parallel()
			testWatchDir(t, pollOnly)
		})
	}
}

func testWatchDir(t *testing.T, pollOnly bool) {
	dir, dataDir := t.TempDir(), t.TempDir()
	rec := &logRecorder{}
	m, err := New(Options{DataDir: dataDir, Logger: slog.New(rec)})
	if err != nil {
		t.Fatal(err)
	}
	m.pollOnly = pollOnly
	t.Cleanup(func() { m.Close() })
	seen := subscribed(m)
	mesh := filepath.Join(dir, "mesh.yaml")
	writeFile(t, mesh, drYAML("reviews", "reviews", "v1")+"---\n"+drYAML("ratings", "ratings", "v1"))
	writeFile(t, filepath.Join(dir, ".hidden.yaml"), "not: [yaml")
	writeFile(t, filepath.Join(dir, "notes.txt"), "not config")
	if err := m.WatchDir(t.Context(), dir); err != nil {
		t.Fatal(err)
	}
	want := func(keys ...string) func() bool {
		return func() bool { return cmp.Equal(keys, seen()) }
	}
	eventually(t, "the first load", want("DestinationRule default/ratings", "DestinationRule default/reviews"))
	if o, _ := m.Get(key(config.KindDestinationRule, "reviews")); o.Source != mesh {
		t.Errorf("Source = %q, want %q", o.Source, mesh)
	}

	// A new file in a new subdirectory, with a Kubernetes object that is skipped.
	sub := filepath.Join(dir, "team", "gw.yml")
	writeFile(t, sub, "apiVersion: v1\nkind: Service\nmetadata: {name: x}\n---\napiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: gw}\nspec: {servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ['*']}]}\n")
	eventually(t, "the new file", want("DestinationRule default/ratings", "DestinationRule default/reviews", "Gateway default/gw"))

	// Removing an object from a file deletes it.
	writeFile(t, mesh, drYAML("reviews", "reviews", "v1", "v2"))
	eventually(t, "ratings deleted", want("DestinationRule default/reviews", "Gateway default/gw"))

	// A broken file is logged with file, object, field and reason; its last good objects stay.
	writeFile(t, mesh, strings.Replace(drYAML("reviews", "reviews", "v3"), "host:", "hosst:", 1))
	eventually(t, "the rejection log", func() bool {
		_, ok := rec.find("config file rejected", mesh, "DestinationRule default/reviews", "spec.hosst", "unknown field")
		return ok
	})
	o, _ := m.Get(key(config.KindDestinationRule, "reviews"))
	if n := len(o.Spec.(*networking.DestinationRule).GetSubsets()); n != 2 {
		t.Errorf("reviews has %d subsets after a broken file, want the last good 2", n)
	}

	// Objects applied through the API coexist with files.
	if _, err := m.Apply(parse(t, drYAML("api-made", "details"))); err != nil {
		t.Fatal(err)
	}

	// Deleting files deletes their objects; nothing from files was persisted.
	if err := os.Remove(mesh); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, "team")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "objects of deleted files gone", want("DestinationRule default/api-made"))
	entries, _ := os.ReadDir(filepath.Join(dataDir, configSubdir))
	if len(entries) != 1 || entries[0].Name() != "test%2Eyaml.yaml" {
		t.Errorf("data dir holds %v, want only the API object's file", entries)
	}
}

func TestWatchDirConflictingFiles(t *testing.T) {
	dir := t.TempDir()
	rec := &logRecorder{}
	m, err := New(Options{Logger: slog.New(rec)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	a, b := filepath.Join(dir, "a.yaml"), filepath.Join(dir, "b.yaml")
	writeFile(t, a, drYAML("reviews", "reviews", "v1"))
	writeFile(t, b, drYAML("reviews", "reviews", "v2")+"---\n"+drYAML("ratings", "ratings"))
	if err := m.WatchDir(t.Context(), dir); err != nil {
		t.Fatal(err)
	}
	line, ok := rec.find("config file rejected", b)
	if !ok || !strings.Contains(line, "DestinationRule default/reviews is already defined in "+a) {
		t.Errorf("no conflict log for %s; got %q", b, line)
	}
	if o, ok := m.Get(key(config.KindDestinationRule, "reviews")); !ok || o.Source != a {
		t.Errorf("reviews = %+v, want the object of %s", o, a)
	}
	if _, ok := m.Get(key(config.KindDestinationRule, "ratings")); ok {
		t.Error("a rejected file's objects were stored")
	}
	if err := m.WatchDir(t.Context(), filepath.Join(dir, "missing")); err == nil {
		t.Error("watching a missing directory succeeded")
	}
}
