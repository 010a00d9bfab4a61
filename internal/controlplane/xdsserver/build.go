package xdsserver

import (
	"context"
	"maps"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"

	"github.com/weft-mesh/weft/internal/config"
	"github.com/weft-mesh/weft/internal/controlplane/registry"
	"github.com/weft-mesh/weft/internal/controlplane/translate"
)

// generation is one version of the config the server builds snapshots
// from, with the shared parts (views) translated from it so far. A
// generation is never modified once published, except that views are added.
type generation struct {
	seq     uint64 // increases with every generation
	version int64  // the store's
	objs    []*config.Object
	byKey   map[config.Key]*config.Object
	reg     *registry.Registry
	// ownKept says that no proxy's own part (translate.BuildOwn) differs
	// from the one built from generation seq-1, and keysKept the same of
	// view keys (translate.ViewKey): the change was to routing only.
	ownKept, keysKept bool

	scopeOnce sync.Once
	scope     *translate.Scope // indexes objs and reg for per-proxy work

	mu    sync.Mutex
	views map[string]*view // by view key
}

// scoped returns the generation's translate.Scope, built on first use.
func (g *generation) scoped() *translate.Scope {
	g.scopeOnce.Do(func() { g.scope = translate.NewScope(g.objs, g.reg) })
	return g.scope
}

// view is one shared part, translated at most once per generation.
type view struct {
	once sync.Once
	done atomic.Bool
	out  *translate.Output
	wire map[string]*wirePart // out, marshaled
	err  error
}

// shared returns the view key's shared part, translating it (once, whoever
// asks first) when the generation does not have it yet.
func (g *generation) shared(key string, build func() (*translate.Output, error)) (*view, error) {
	g.mu.Lock()
	v := g.views[key]
	if v == nil {
		v = &view{}
		g.views[key] = v
	}
	g.mu.Unlock()
	v.once.Do(func() {
		if v.out, v.err = build(); v.err == nil {
			v.wire, v.err = wireParts(v.out)
		}
		v.done.Store(true)
	})
	return v, v.err
}

// routingKinds are the kinds whose changes touch only the shared parts of
// the services they name (translate.ServicesConcerned), never the registry
// nor a proxy's own part.
var routingKinds = map[string]bool{config.KindVirtualService: true, config.KindDestinationRule: true}

// nextGeneration reads the store and derives the generation after prev:
// after a change to routing only, it keeps prev's registry, and the views
// the change does not concern. platform says that the registry's platform
// part (Server.Changed) may have changed.
func (s *Server) nextGeneration(prev *generation, platform bool) *generation {
	version, objs := s.opts.Store.Snapshot()
	g := &generation{version: version, objs: objs, byKey: make(map[config.Key]*config.Object, len(objs)), views: map[string]*view{}}
	for _, o := range objs {
		g.byKey[o.Key()] = o
	}
	if prev == nil {
		g.reg = s.opts.Registry(objs)
		return g
	}
	g.seq = prev.seq + 1
	changed, routing := diffObjects(prev.byKey, g.byKey)
	if platform || !routing {
		g.reg = s.opts.Registry(objs)
		return g
	}
	g.reg, g.ownKept, g.keysKept = prev.reg, true, true
	for _, o := range changed {
		if translate.HasProxySelectors(o) {
			g.keysKept = false
		}
	}
	hosts, all := translate.ServicesConcerned(changed, prev.objs, objs)
	if all {
		return g
	}
	prev.mu.Lock()
	defer prev.mu.Unlock()
	for key, v := range prev.views {
		if v.done.Load() && v.err == nil && !concerns(hosts, v.out.Services) {
			g.views[key] = v
		}
	}
	return g
}

// diffObjects returns the objects that differ between two configs (both
// versions of a changed one) and whether they are all of routingKinds.
func diffObjects(old, cur map[config.Key]*config.Object) (changed []*config.Object, routing bool) {
	routing = true
	add := func(o *config.Object) {
		changed = append(changed, o)
		routing = routing && routingKinds[o.Kind]
	}
	for k, o := range cur {
		if p, ok := old[k]; !ok || p != o && p.ResourceVersion != o.ResourceVersion {
			add(o)
			if ok {
				add(p)
			}
		}
	}
	for k, o := range old {
		if _, ok := cur[k]; !ok {
			add(o)
		}
	}
	return changed, routing
}

func concerns(hosts, services map[string]bool) bool {
	for h := range hosts {
		if services[h] {
			return true
		}
	}
	return false
}

// proxyBuild is what the server keeps of a proxy's last build.
type proxyBuild struct {
	mu      sync.Mutex
	closed  bool   // the proxy left: build no more
	seq     uint64 // generation built from
	built   bool
	info    *proxyInfo // that the view key was computed for
	key     string     // view key ("" with split false)
	split   bool
	shared  *translate.Output
	own     *translate.Output
	ownWire map[string]*wirePart
	// deltaSet: the delta cache has the proxy's snapshot.
	deltaSet bool
	// versions are the versions of the snapshot set, warnings translate's
	// warnings logged last.
	versions map[string]string
	warnings string
}

// buildAll rebuilds the snapshot of every connected proxy from g, on as
// many goroutines as there are cores; changed is when the change being
// built happened (zero: unknown).
func (s *Server) buildAll(g *generation, changed time.Time) {
	s.mu.Lock()
	targets := make([]*proxyState, 0, len(s.proxies))
	for _, p := range s.proxies {
		targets = append(targets, p)
	}
	s.mu.Unlock()
	work := make(chan *proxyState)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(targets)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range work {
				s.buildTimed(g, p, changed)
			}
		}()
	}
	for _, p := range targets {
		work <- p
	}
	close(work)
	wg.Wait()
}

// buildFirst builds the first snapshot of a proxy that just connected.
// At most firstBuilds of them run at once, so that a storm of reconnecting
// proxies is served in turn instead of all slowly.
func (s *Server) buildFirst(p *proxyState) {
	s.firstBuilds <- struct{}{}
	defer func() { <-s.firstBuilds }()
	s.buildTimed(s.current(), p, time.Time{})
}

func (s *Server) buildTimed(g *generation, p *proxyState, changed time.Time) {
	start := time.Now()
	if s.buildProxy(g, p) && s.opts.Hooks.SnapshotSet != nil {
		var since time.Duration
		if !changed.IsZero() {
			since = time.Since(changed)
		}
		s.opts.Hooks.SnapshotSet(time.Since(start), since)
	}
}

// current returns the generation last built from, reading the store for a
// first one.
func (s *Server) current() *generation {
	if g := s.gen.Load(); g != nil {
		return g
	}
	s.roundMu.Lock()
	defer s.roundMu.Unlock()
	if g := s.gen.Load(); g != nil {
		return g
	}
	g := s.nextGeneration(nil, false)
	s.gen.Store(g)
	return g
}

// buildProxy sets one proxy's snapshot from g and says whether it did (a
// new one); a proxy whose parts did not change costs nothing. On any error
// it logs and keeps the previous snapshot.
func (s *Server) buildProxy(g *generation, p *proxyState) bool {
	b := p.build
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed || b.built && b.seq >= g.seq {
		return false
	}
	s.mu.Lock()
	info, delta := p.info, p.delta
	s.mu.Unlock()
	in := translate.Input{Config: g.objs, Registry: g.reg, Proxy: info.proxy, Mesh: s.opts.Mesh}
	id := p.key
	next := b.built && b.seq+1 == g.seq && b.info == info // built from the generation before g
	if s.opts.ViewKey != nil && (!next || !g.keysKept) {
		b.key, b.split = s.opts.ViewKey(g.scoped().KeyInput(in))
		b.info = info
	}
	var r *buildResult
	var err error
	switch {
	case info.generator == GeneratorGRPC:
		r, err = s.buildGRPC(g, b, in, delta)
	case s.opts.ViewKey != nil && b.split:
		r, err = s.buildSplit(g, b, in, next && g.ownKept, delta)
	default:
		b.shared, b.own, b.ownWire = nil, nil, nil
		r, err = s.buildWhole(in)
	}
	if err != nil {
		s.log.Error("translating config; keeping the previous snapshot", "proxy", id, "config_version", g.version, "error", err)
		return false
	}
	b.seq = g.seq
	if r == nil { // its parts did not change
		return false
	}
	if w := strings.Join(r.warnings, "; "); w != b.warnings {
		b.warnings = w
		for _, msg := range r.warnings {
			s.log.Warn("config not fully supported", "proxy", id, "warning", msg)
		}
	}
	b.built = true
	if maps.Equal(r.versions, b.versions) && !(delta && !b.deltaSet) {
		return false
	}
	if delta {
		if err := s.setDelta(id, r); err != nil {
			s.log.Error("invalid snapshot; keeping the previous one", "proxy", id, "config_version", g.version, "error", err)
			return false
		}
		b.deltaSet = true
	}
	s.sotw.set(id, r.wire)
	b.versions = r.versions
	s.log.Debug("snapshot set", "proxy", id, "config_version", g.version, "versions", r.versions)
	return true
}

// buildResult is one proxy's new config: its versions, what state of the
// world streams get, and (for delta streams) go-control-plane's snapshot.
type buildResult struct {
	versions map[string]string
	wire     wireSnapshot
	warnings []string
	snap     *cache.Snapshot                 // set, or made by full
	full     func() (*cache.Snapshot, error) // nil with snap set
}

func (s *Server) setDelta(id string, r *buildResult) error {
	snap := r.snap
	if snap == nil {
		var err error
		if snap, err = r.full(); err != nil {
			return err
		}
	}
	return s.delta.SetSnapshot(context.Background(), id, snap)
}

// buildWhole translates a proxy's config in one piece (gateways, EnvoyFilters).
func (s *Server) buildWhole(in translate.Input) (*buildResult, error) {
	out, err := s.opts.Translate(in)
	if err != nil {
		return nil, err
	}
	snap, err := newSnapshot(out, false)
	if err != nil {
		return nil, err
	}
	parts, err := wireParts(out)
	if err != nil {
		return nil, err
	}
	versions := snapshotVersions(snap)
	return &buildResult{versions: versions, wire: newWireSnapshot(versions, parts), warnings: out.Warnings, snap: snap}, nil
}

// buildSplit joins the proxy's view's shared part with its own part
// (rebuilt unless keepOwn); it returns nil when neither changed.
func (s *Server) buildSplit(g *generation, b *proxyBuild, in translate.Input, keepOwn, delta bool) (*buildResult, error) {
	v, err := g.shared(b.key, func() (*translate.Output, error) { return s.opts.BuildShared(in) })
	if err != nil {
		return nil, err
	}
	own, ownWire := b.own, b.ownWire
	if !keepOwn || own == nil {
		if own, err = s.opts.BuildOwn(g.scoped().OwnInput(in)); err != nil {
			return nil, err
		}
		if ownWire, err = wireParts(own); err != nil {
			return nil, err
		}
	}
	if b.built && v.out == b.shared && own == b.own && !(delta && !b.deltaSet) {
		return nil, nil
	}
	b.shared, b.own, b.ownWire = v.out, own, ownWire
	merged := translate.Merge(v.out, own)
	return &buildResult{
		versions: merged.Versions,
		wire:     newWireSnapshot(merged.Versions, v.wire, ownWire),
		warnings: merged.Warnings,
		full:     func() (*cache.Snapshot, error) { return newSnapshot(merged, true) },
	}, nil
}
