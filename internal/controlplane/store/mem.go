package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sort"
	"sync"

	"google.golang.org/protobuf/proto"

	"github.com/weft-mesh/weft/internal/config"
)

// Options configures a Mem store.
type Options struct {
	// DataDir, if set, is where every change is persisted and loaded from at start.
	DataDir string
	// Logger receives the store's logs; nil discards them.
	Logger *slog.Logger
}

// Mem is the in-memory Store, optionally persisted under a data directory
// and fed from watched config directories. Safe for concurrent use.
type Mem struct {
	log     *slog.Logger
	dataDir string
	notify  notifier

	mu          sync.Mutex
	version     int64
	objs        map[config.Key]*config.Object
	fileSources map[string]bool // sources that are watched files: not persisted
	// history is the kept revisions, oldest first; the state at any
	// revision from historyFrom on can be rebuilt from them.
	history      []Revision
	historyFrom  int64
	historyLines int // lines in the history file

	pollOnly bool // tests: watch directories by polling only

	watchMu sync.Mutex
	cancels []context.CancelFunc
	wg      sync.WaitGroup
}

var _ Store = (*Mem)(nil)

// New returns a store. With a DataDir it loads the config persisted there;
// an unreadable or invalid persisted file is an error, so nothing is lost silently.
func New(opts Options) (*Mem, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "store")
	m := &Mem{
		log:         log,
		dataDir:     opts.DataDir,
		objs:        map[config.Key]*config.Object{},
		fileSources: map[string]bool{},
	}
	m.notify.log = log
	if m.dataDir != "" {
		objs, err := loadDataDir(m.dataDir)
		if err != nil {
			return nil, err
		}
		if len(objs) > 0 {
			m.version = 1
		}
		for _, o := range objs {
			o.ResourceVersion = m.version
			m.objs[o.Key()] = o
		}
		revs, lines, err := loadHistory(m.dataDir)
		if err != nil {
			return nil, err
		}
		m.history, m.historyLines = revs, lines
		if n := len(revs); n > 0 {
			// Revision numbers go on from the history: the loaded config
			// is its newest revision's.
			m.version = max(m.version, revs[n-1].Number)
			m.historyFrom = revs[0].Number - 1
		} else {
			m.historyFrom = m.version
		}
		for _, o := range objs {
			o.ResourceVersion = m.version
		}
		log.Info("loaded persisted config", "dir", m.dataDir, "objects", len(objs), "revisions", len(revs))
	}
	return m, nil
}

// Apply validates every object, then stores them all as one change, or none
// of them if any is invalid. Objects without a Source get SourceAPI. It
// returns the stored objects; unchanged objects keep their version and an
// Apply that changes nothing notifies no one.
func (m *Mem) Apply(objs []*config.Object) ([]*config.Object, error) {
	return m.ApplyBy("", objs)
}

// ApplyBy is Apply recorded in the history as made by actor (a user's
// name, "console (jane)"; "": the objects' source).
func (m *Mem) ApplyBy(actor string, objs []*config.Object) ([]*config.Object, error) {
	puts := make([]*config.Object, 0, len(objs))
	seen := map[config.Key]bool{}
	var errs []error
	for i, o := range objs {
		if o == nil {
			errs = append(errs, fmt.Errorf("object %d is nil", i))
			continue
		}
		if seen[o.Key()] {
			errs = append(errs, fmt.Errorf("%s: given twice", o.Key()))
			continue
		}
		seen[o.Key()] = true
		if err := config.Validate(o); err != nil {
			errs = append(errs, err)
			continue
		}
		puts = append(puts, copyObject(o))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	stored, _, err := m.commitBy(actor, puts, nil)
	return stored, err
}

// Delete removes the keys that are stored and returns them; the error, which
// wraps ErrNotFound, names every key that was not stored.
func (m *Mem) Delete(keys []config.Key) ([]config.Key, error) {
	return m.DeleteBy("", keys)
}

// DeleteBy is Delete recorded in the history as made by actor.
func (m *Mem) DeleteBy(actor string, keys []config.Key) ([]config.Key, error) {
	_, deleted, err := m.commitBy(actor, nil, keys)
	if err != nil {
		return nil, err
	}
	var missing []error
	found := map[config.Key]bool{}
	for _, k := range deleted {
		found[k] = true
	}
	for _, k := range keys {
		if !found[k] {
			missing = append(missing, fmt.Errorf("%s: %w", k, ErrNotFound))
		}
	}
	return deleted, errors.Join(missing...)
}

// Get returns the stored object for key.
func (m *Mem) Get(key config.Key) (*config.Object, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.objs[key]
	return o, ok
}

// List returns the objects of kind in namespace ("" matches all), sorted by
// kind, namespace and name.
func (m *Mem) List(kind, namespace string) []*config.Object {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*config.Object
	for k, o := range m.objs {
		if (kind == "" || k.Kind == kind) && (namespace == "" || k.Namespace == namespace) {
			out = append(out, o)
		}
	}
	sortObjects(out)
	return out
}

// Snapshot returns the current version and every object, sorted, as one consistent view.
func (m *Mem) Snapshot() (int64, []*config.Object) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*config.Object, 0, len(m.objs))
	for _, o := range m.objs {
		out = append(out, o)
	}
	sortObjects(out)
	return m.version, out
}

// Version returns the current version: 0 for an empty store never changed.
func (m *Mem) Version() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.version
}

// Subscribe registers fn to be called with the new version after every
// change, one call at a time, never under the store's lock. fn may read or
// change the store.
func (m *Mem) Subscribe(fn func(version int64)) { m.notify.subscribe(fn) }

// commitBy stores puts and removes dels as one change by actor ("": named
// by the objects' source): it persists the new state, records the
// revision, then swaps it in and notifies subscribers. It returns the
// stored objects for puts and the keys actually deleted.
func (m *Mem) commitBy(actor string, puts []*config.Object, dels []config.Key) ([]*config.Object, []config.Key, error) {
	m.mu.Lock()
	next := m.version + 1
	stored := make([]*config.Object, len(puts))
	var changed []change
	for i, o := range puts {
		old := m.objs[o.Key()]
		if sameObject(old, o) {
			stored[i] = old
			continue
		}
		o.ResourceVersion = next
		stored[i] = o
		changed = append(changed, change{key: o.Key(), old: old, new: o})
	}
	var deleted []config.Key
	gone := map[config.Key]bool{}
	for _, k := range dels {
		if old, ok := m.objs[k]; ok && !gone[k] {
			gone[k] = true
			deleted = append(deleted, k)
			changed = append(changed, change{key: k, old: old})
		}
	}
	if len(changed) == 0 {
		m.mu.Unlock()
		return stored, deleted, nil
	}
	objs := maps.Clone(m.objs)
	for _, c := range changed {
		if c.new == nil {
			delete(objs, c.key)
		} else {
			objs[c.key] = c.new
		}
	}
	if err := m.persist(objs, changed); err != nil {
		m.mu.Unlock()
		return nil, nil, err
	}
	if actor == "" {
		actor = actorOf(changed)
	}
	m.recordLocked(next, actor, changed)
	m.objs, m.version = objs, next
	m.notify.enqueue(next)
	m.mu.Unlock()
	m.log.Debug("config changed", "version", next, "objects", len(changed))
	m.notify.deliver()
	return stored, deleted, nil
}

// actorOf names who made changes that name no actor: the source of their
// objects ("api", "kubernetes", "file /etc/weft/vs.yaml").
func actorOf(changed []change) string {
	for _, c := range changed {
		o := c.new
		if o == nil {
			o = c.old
		}
		switch src := o.Source; src {
		case SourceAPI, SourceKubernetes, SourceAutoRegistration:
			return src
		default:
			return "file " + src
		}
	}
	return ""
}

// change is one key's old and new object (new nil: deleted).
type change struct {
	key      config.Key
	old, new *config.Object
}

// sameObject reports whether storing b over a would change nothing.
func sameObject(a, b *config.Object) bool {
	return a != nil && a.APIVersion == b.APIVersion && a.Source == b.Source &&
		maps.Equal(a.Labels, b.Labels) && maps.Equal(a.Annotations, b.Annotations) &&
		proto.Equal(a.Spec, b.Spec)
}

// copyObject returns a deep copy the store can own.
func copyObject(o *config.Object) *config.Object {
	c := *o
	c.Labels = maps.Clone(o.Labels)
	c.Annotations = maps.Clone(o.Annotations)
	if o.Spec != nil {
		c.Spec = proto.Clone(o.Spec)
	}
	if c.Source == "" {
		c.Source = SourceAPI
	}
	return &c
}

func sortObjects(objs []*config.Object) {
	sort.Slice(objs, func(i, j int) bool {
		a, b := objs[i].Key(), objs[j].Key()
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		return a.Name < b.Name
	})
}

// Close stops every directory watch and waits for them to end.
func (m *Mem) Close() error {
	m.watchMu.Lock()
	for _, c := range m.cancels {
		c()
	}
	m.cancels = nil
	m.watchMu.Unlock()
	m.wg.Wait()
	return nil
}
