// Package xdsserver is the control plane's xDS server: go-control-plane's
// ADS (state of the world and delta) over gRPC, one snapshot per proxy built
// by translate whenever the config changes, per-proxy sync status, and
// auto-registration of proxies that announce a service.
package xdsserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/server/sotw/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	"github.com/weft-mesh/weft/internal/config"
	"github.com/weft-mesh/weft/internal/controlplane/registry"
	"github.com/weft-mesh/weft/internal/controlplane/store"
	"github.com/weft-mesh/weft/internal/controlplane/translate"
)

// Defaults for Options.
const (
	DefaultDebounce          = 100 * time.Millisecond
	DefaultRegistrationGrace = 10 * time.Second
)

// maxDebounce bounds, in debounce periods, how long a stream of changes
// can delay a rebuild.
const maxDebounce = 10

// Options configures a Server.
type Options struct {
	// Store is the config store; the server watches it and writes
	// auto-registered ServiceEntries and WorkloadEntries to it.
	Store store.Store
	// Registry builds the service registry from config (registry.Build).
	Registry func(objs []*config.Object) *registry.Registry
	// Translate builds one proxy's resources (translate.Build).
	Translate func(in translate.Input) (*translate.Output, error)
	// Mesh is the mesh-wide config given to Translate.
	Mesh translate.Mesh
	// Debounce is how long config must be quiet before snapshots are rebuilt.
	Debounce time.Duration
	// RegistrationGrace is how long an auto-registered WorkloadEntry outlives
	// its proxy's last stream.
	RegistrationGrace time.Duration
	// Logger receives the server's logs; nil discards them.
	Logger *slog.Logger
	// Hooks report pushes, NACKs and snapshot timings (for metrics).
	Hooks Hooks
}

// Server serves xDS to proxies. Create it with New, run it with Serve.
type Server struct {
	opts  Options
	log   *slog.Logger
	cache cache.SnapshotCache

	// buildMu serializes snapshot building and clearing.
	buildMu      sync.Mutex
	lastVersions map[string]map[string]string // node ID -> type URL -> version set
	lastWarnings map[string]string            // node ID -> translate's warnings, joined

	// changedAt is when the first config change not yet built happened
	// (Unix ns, 0: none), for Hooks.SnapshotSet.
	changedAt atomic.Int64

	// regMu serializes auto-registrations and their removals.
	regMu sync.Mutex

	// ads is go-control-plane's ADS, shared by every gRPC server serving it
	// (:15010 and, through Register, :15012) so stream IDs never collide.
	ads     serverv3.Server
	adsStop context.CancelFunc

	mu      sync.Mutex
	streams map[streamKey]string   // stream -> node ID ("" before its first request)
	proxies map[string]*proxyState // node ID -> state
	pending map[config.Key]time.Time
	kick    chan struct{} // config changed
	wake    chan struct{} // pending removals changed
}

// New returns a server for opts. Options.Store, Registry and Translate are required.
func New(opts Options) (*Server, error) {
	if opts.Store == nil || opts.Registry == nil || opts.Translate == nil {
		return nil, errors.New("xdsserver: Store, Registry and Translate are required")
	}
	if opts.Debounce <= 0 {
		opts.Debounce = DefaultDebounce
	}
	if opts.RegistrationGrace <= 0 {
		opts.RegistrationGrace = DefaultRegistrationGrace
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	log := opts.Logger.With("component", "xdsserver")
	s := &Server{
		opts:         opts,
		log:          log,
		cache:        cache.NewSnapshotCache(true, cache.IDHash{}, cacheLogger{log}),
		lastVersions: map[string]map[string]string{},
		lastWarnings: map[string]string{},
		streams:      map[streamKey]string{},
		proxies:      map[string]*proxyState{},
		pending:      map[config.Key]time.Time{},
		kick:         make(chan struct{}, 1),
		wake:         make(chan struct{}, 1),
	}
	var adsCtx context.Context
	adsCtx, s.adsStop = context.WithCancel(context.Background())
	s.ads = serverv3.NewServer(adsCtx, s.cache, callbacks{s}, sotw.WithOrderedADS())
	opts.Store.Subscribe(func(int64) { s.Changed() })
	return s, nil
}

// Changed tells the server that what Options.Registry returns may have
// changed (a platform registry such as Kubernetes' Services): snapshots are
// rebuilt after the debounce period, as after a config change. Safe to call
// from any goroutine.
func (s *Server) Changed() {
	s.changedAt.CompareAndSwap(0, time.Now().UnixNano())
	s.kickLoop()
}

// Register registers the ADS service on g, another gRPC server (the
// authenticated :15012), before g serves. Its streams share this server's
// snapshots and status; they end when g stops or Serve returns.
func (s *Server) Register(g *grpc.Server) {
	discoverygrpc.RegisterAggregatedDiscoveryServiceServer(g, s.ads)
}

// Serve serves ADS on lis (nil: on no listener of its own, only on the
// servers given to Register) until ctx ends, then stops the gRPC server
// (closing every stream) and returns. It returns nil after ctx ends.
func (s *Server) Serve(ctx context.Context, lis net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer s.adsStop()
	xds := s.ads
	g := grpc.NewServer(
		// Notice dead proxies (their registration's grace starts then) and
		// let proxies ping us as often as every few seconds.
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
	)
	discoverygrpc.RegisterAggregatedDiscoveryServiceServer(g, xds)
	s.adoptPersisted()

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.loop(ctx)
	}()
	errc := make(chan error, 1)
	if lis != nil { // nil: plaintext xDS is off; Register'ed servers serve it
		s.log.Info("serving xDS", "address", lis.Addr().String())
		go func() { errc <- g.Serve(lis) }()
	}
	var err error
	select {
	case <-ctx.Done():
		g.Stop()
		if lis != nil {
			<-errc
		}
	case err = <-errc:
		g.Stop()
		cancel()
		err = fmt.Errorf("serving xDS on %s: %w", lis.Addr(), err)
	}
	wg.Wait()
	return err
}

func (s *Server) kickLoop() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

func (s *Server) wakeLoop() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// loop debounces config changes into rebuilds and removes auto-registered
// WorkloadEntries whose grace period is over.
func (s *Server) loop(ctx context.Context) {
	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	grace := time.NewTimer(time.Hour)
	defer debounce.Stop()
	defer grace.Stop()
	var firstChange time.Time // of the changes waiting for a rebuild
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
			// Wait for quiet, but never longer than maxDebounce in all.
			now := time.Now()
			if firstChange.IsZero() {
				firstChange = now
			}
			wait := min(s.opts.Debounce, firstChange.Add(maxDebounce*s.opts.Debounce).Sub(now))
			debounce.Reset(max(wait, 0))
		case <-debounce.C:
			firstChange = time.Time{}
			s.buildProxies(nil)
		case <-s.wake:
		case <-grace.C:
		}
		if next, ok := s.expireRegistrations(time.Now()); ok {
			grace.Reset(time.Until(next))
		}
	}
}

// buildProxies rebuilds the snapshots of the proxies with the given node IDs
// (nil: every connected proxy) from the store's current config.
func (s *Server) buildProxies(ids []string) {
	s.buildMu.Lock()
	defer s.buildMu.Unlock()
	s.mu.Lock()
	var targets []*proxyInfo
	for id, p := range s.proxies {
		if ids == nil || contains(ids, id) {
			targets = append(targets, p.info)
		}
	}
	s.mu.Unlock()
	if len(targets) == 0 {
		return
	}
	var changed time.Time
	if ids == nil {
		if n := s.changedAt.Swap(0); n != 0 {
			changed = time.Unix(0, n)
		}
	}
	version, objs := s.opts.Store.Snapshot()
	reg := s.opts.Registry(objs)
	for _, info := range targets {
		start := time.Now()
		if s.buildProxy(version, objs, reg, info) && s.opts.Hooks.SnapshotSet != nil {
			var since time.Duration
			if !changed.IsZero() {
				since = time.Since(changed)
			}
			s.opts.Hooks.SnapshotSet(time.Since(start), since)
		}
	}
}

// buildProxy sets one proxy's snapshot and says whether it did (a new
// one); on any error it logs and keeps the previous one.
func (s *Server) buildProxy(version int64, objs []*config.Object, reg *registry.Registry, info *proxyInfo) bool {
	id := info.proxy.ID
	out, err := s.opts.Translate(translate.Input{Config: objs, Registry: reg, Proxy: info.proxy, Mesh: s.opts.Mesh})
	if err != nil {
		s.log.Error("translating config; keeping the previous snapshot", "proxy", id, "config_version", version, "error", err)
		return false
	}
	if w := strings.Join(out.Warnings, "; "); w != s.lastWarnings[id] {
		s.lastWarnings[id] = w
		for _, msg := range out.Warnings {
			s.log.Warn("config not fully supported", "proxy", id, "warning", msg)
		}
	}
	snap, err := newSnapshot(out)
	if err != nil {
		s.log.Error("invalid snapshot; keeping the previous one", "proxy", id, "config_version", version, "error", err)
		return false
	}
	versions := snapshotVersions(snap)
	if maps.Equal(versions, s.lastVersions[id]) {
		return false
	}
	if err := s.cache.SetSnapshot(context.Background(), id, snap); err != nil {
		s.log.Error("setting snapshot", "proxy", id, "error", err)
		return false
	}
	s.lastVersions[id] = versions
	s.log.Debug("snapshot set", "proxy", id, "config_version", version, "versions", versions)
	return true
}

func contains(ids []string, id string) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// cacheLogger adapts slog to go-control-plane's logger interface.
type cacheLogger struct{ l *slog.Logger }

func (c cacheLogger) Debugf(format string, args ...any) {
	if c.l.Enabled(context.Background(), slog.LevelDebug) {
		c.l.Debug(fmt.Sprintf(format, args...))
	}
}
func (c cacheLogger) Infof(format string, args ...any) { c.Debugf(format, args...) }
func (c cacheLogger) Warnf(format string, args ...any) { c.l.Warn(fmt.Sprintf(format, args...)) }
func (c cacheLogger) Errorf(format string, args ...any) {
	c.l.Error(fmt.Sprintf(format, args...))
}
