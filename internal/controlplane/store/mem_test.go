package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/weft-mesh/weft/internal/config"
)

// drYAML is a DestinationRule for host with one subset per version.
func drYAML(name, host string, versions ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: %s}\nspec:\n  host: %s\n", name, host)
	if len(versions) > 0 {
		b.WriteString("  subsets:\n")
	}
	for _, v := range versions {
		fmt.Fprintf(&b, "  - {name: %s, labels: {version: %s}}\n", v, v)
	}
	return b.String()
}

// parse parses YAML or fails the test.
func parse(t *testing.T, yaml string) []*config.Object {
	t.Helper()
	objs, err := config.Parse("test.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// newStore returns a store with a data dir, closed at test end.
func newStore(t *testing.T, dataDir string) *Mem {
	t.Helper()
	m, err := New(Options{DataDir: dataDir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func key(kind, name string) config.Key {
	return config.Key{Kind: kind, Namespace: "default", Name: name}
}

func names(objs []*config.Object) []string {
	out := []string{}
	for _, o := range objs {
		out = append(out, o.Key().String())
	}
	return out
}

func TestApplyGetListDelete(t *testing.T) {
	m := newStore(t, "")
	var versions []int64
	m.Subscribe(func(v int64) { versions = append(versions, v) })

	stored, err := m.Apply(parse(t, drYAML("reviews", "reviews", "v1")+"---\n"+drYAML("ratings", "ratings", "v1")))
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != 2 || stored[0].ResourceVersion != 1 || stored[0].Source != "test.yaml" {
		t.Fatalf("stored = %+v", stored)
	}
	if _, err := m.Apply(parse(t, "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: gw, namespace: istio-system}\nspec: {servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ['*']}]}\n")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		kind, ns string
		want     []string
	}{
		{"", "", []string{"DestinationRule default/ratings", "DestinationRule default/reviews", "Gateway istio-system/gw"}},
		{config.KindDestinationRule, "", []string{"DestinationRule default/ratings", "DestinationRule default/reviews"}},
		{"", "istio-system", []string{"Gateway istio-system/gw"}},
		{config.KindVirtualService, "", []string{}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, names(m.List(tt.kind, tt.ns))); diff != "" {
			t.Errorf("List(%q, %q) (-want +got):\n%s", tt.kind, tt.ns, diff)
		}
	}
	if o, ok := m.Get(key(config.KindDestinationRule, "reviews")); !ok || o.Name != "reviews" {
		t.Errorf("Get = %v, %v", o, ok)
	}

	deleted, err := m.Delete([]config.Key{key(config.KindDestinationRule, "reviews"), key(config.KindDestinationRule, "nope"), key(config.KindDestinationRule, "reviews")})
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "DestinationRule default/nope") {
		t.Errorf("Delete error = %v, want ErrNotFound naming the missing key", err)
	}
	if diff := cmp.Diff([]config.Key{key(config.KindDestinationRule, "reviews")}, deleted); diff != "" {
		t.Errorf("deleted (-want +got):\n%s", diff)
	}
	if _, ok := m.Get(key(config.KindDestinationRule, "reviews")); ok {
		t.Error("deleted object still stored")
	}
	v, objs := m.Snapshot()
	if v != 3 || len(objs) != 2 {
		t.Errorf("Snapshot = %d, %d objects; want 3, 2", v, len(objs))
	}
	if diff := cmp.Diff([]int64{1, 2, 3}, versions); diff != "" {
		t.Errorf("notified versions (-want +got):\n%s", diff)
	}
}

func TestApplyUnchangedIsNoChange(t *testing.T) {
	m := newStore(t, "")
	calls := 0
	m.Subscribe(func(int64) { calls++ })
	for range 3 {
		stored, err := m.Apply(parse(t, drYAML("reviews", "reviews", "v1")))
		if err != nil {
			t.Fatal(err)
		}
		if stored[0].ResourceVersion != 1 {
			t.Errorf("ResourceVersion = %d, want 1 (unchanged)", stored[0].ResourceVersion)
		}
	}
	if calls != 1 || m.Version() != 1 {
		t.Errorf("calls = %d, version = %d; want 1, 1", calls, m.Version())
	}
}

func TestApplyAllOrNothing(t *testing.T) {
	m := newStore(t, t.TempDir())
	if _, err := m.Apply(parse(t, drYAML("reviews", "reviews", "v1"))); err != nil {
		t.Fatal(err)
	}
	good := parse(t, drYAML("ratings", "ratings", "v1"))[0]
	bad := parse(t, drYAML("reviews", "reviews", "v2"))[0]
	bad.Spec.ProtoReflect().Clear(bad.Spec.ProtoReflect().Descriptor().Fields().ByName("host"))

	_, err := m.Apply([]*config.Object{good, bad})
	want := "test.yaml: DestinationRule default/reviews: spec.host: host must not be empty"
	if err == nil || err.Error() != want {
		t.Fatalf("Apply error = %v, want %s", err, want)
	}
	if diff := cmp.Diff([]string{"DestinationRule default/reviews"}, names(m.List("", ""))); diff != "" {
		t.Errorf("an invalid batch changed the store (-want +got):\n%s", diff)
	}
	if o, _ := m.Get(key(config.KindDestinationRule, "reviews")); o.ResourceVersion != 1 {
		t.Errorf("the valid object was replaced: %+v", o)
	}
	if m.Version() != 1 {
		t.Errorf("version = %d, want 1", m.Version())
	}
}

func TestPersistenceAcrossNew(t *testing.T) {
	dir := t.TempDir()
	m := newStore(t, dir)
	objs := parse(t, drYAML("reviews", "reviews", "v1", "v2")+"---\n"+drYAML("ratings", "ratings", "v1"))
	objs[1].Source = SourceAutoRegistration
	if _, err := m.Apply(objs); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Apply(parse(t, drYAML("details", "details"))); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Delete([]config.Key{key(config.KindDestinationRule, "details")}); err != nil {
		t.Fatal(err)
	}
	_, before := m.Snapshot()

	reopened := newStore(t, dir)
	_, after := reopened.Snapshot()
	ignore := cmpopts.IgnoreFields(config.Object{}, "ResourceVersion")
	if diff := cmp.Diff(before, after, protocmp.Transform(), ignore); diff != "" {
		t.Errorf("config changed across restart (-before +after):\n%s", diff)
	}
	entries, err := os.ReadDir(filepath.Join(dir, configSubdir))
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, e := range entries {
		files = append(files, e.Name())
	}
	if diff := cmp.Diff([]string{"auto-registration.yaml", "test%2Eyaml.yaml"}, files); diff != "" {
		t.Errorf("data dir files (-want +got):\n%s", diff)
	}
}

func TestNewRejectsCorruptDataDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, configSubdir), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, configSubdir, "api.yaml"), []byte("kind: [\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Options{DataDir: dir}); err == nil || !strings.Contains(err.Error(), "api.yaml") {
		t.Errorf("New error = %v, want one naming api.yaml", err)
	}
}

// TestConcurrentUse applies, deletes and reads from many goroutines (run
// with -race); subscribers must see strictly increasing versions, one call
// at a time.
func TestConcurrentUse(t *testing.T) {
	m := newStore(t, t.TempDir())
	var (
		mu       sync.Mutex
		last     int64
		inside   bool
		problems []string
	)
	m.Subscribe(func(v int64) {
		mu.Lock()
		if inside {
			problems = append(problems, "subscriber called concurrently")
		}
		inside = true
		if v <= last {
			problems = append(problems, fmt.Sprintf("version %d after %d", v, last))
		}
		last = v
		mu.Unlock()
		m.List("", "") // reading from a callback must not deadlock
		mu.Lock()
		inside = false
		mu.Unlock()
	})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				name := fmt.Sprintf("dr-%d-%d", g, i%3)
				if _, err := m.Apply(parse(t, drYAML(name, "reviews", fmt.Sprintf("v%d", i)))); err != nil {
					t.Error(err)
					return
				}
				m.Snapshot()
				if i%2 == 1 {
					_, _ = m.Delete([]config.Key{key(config.KindDestinationRule, name)})
				}
			}
		}()
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(problems) > 0 {
		t.Fatal(strings.Join(problems, "\n"))
	}
	if last != m.Version() {
		t.Errorf("last notified version %d, store version %d", last, m.Version())
	}
}

func TestSubscriberMayApply(t *testing.T) {
	m := newStore(t, "")
	done := make(chan int64, 10)
	m.Subscribe(func(v int64) {
		if v == 1 {
			if _, err := m.Apply(parse(t, drYAML("second", "ratings"))); err != nil {
				t.Error(err)
			}
		}
		done <- v
	})
	if _, err := m.Apply(parse(t, drYAML("first", "reviews"))); err != nil {
		t.Fatal(err)
	}
	if got := []int64{<-done, <-done}; got[0] != 1 || got[1] != 2 {
		t.Errorf("versions = %v, want [1 2]", got)
	}
}
