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
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/server/sotw/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/peer"

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
	// TranslateGRPC builds a proxyless gRPC client's resources (node
	// metadata GENERATOR=grpc) and validates them; nil: translate.BuildGRPC.
	TranslateGRPC func(in translate.Input) (*translate.Output, error)
	// ViewKey, BuildShared and BuildOwn split a sidecar's translation
	// (translate.ViewKey, BuildShared, BuildOwn): proxies of one view key
	// share one shared part, translated once per config change that
	// concerns it. BuildShared and BuildOwn validate what they return.
	// Nil ViewKey: every proxy is translated whole by Translate.
	ViewKey     func(in translate.Input) (string, bool)
	BuildShared func(in translate.Input) (*translate.Output, error)
	BuildOwn    func(in translate.Input) (*translate.Output, error)
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
	// Authenticated reports whether the caller of a stream proved an
	// identity (its context's peer). Only authenticated streams are
	// registered and served identity-bearing config; the others are
	// plaintext: read-only, for the node they name at most, never one an
	// authenticated proxy or a WorkloadEntry holds. Nil: a client
	// certificate verified by the gRPC server's TLS (the :15012 server
	// checks that the node matches it).
	Authenticated func(ctx context.Context) bool
}

// verifiedClientCert reports whether ctx's peer presented a client
// certificate its TLS server verified.
func verifiedClientCert(ctx context.Context) bool {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return false
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	return ok && len(info.State.VerifiedChains) > 0
}

// Server serves xDS to proxies. Create it with New, run it with Serve.
type Server struct {
	opts Options
	log  *slog.Logger
	// sotw answers state-of-the-world streams; delta, go-control-plane's
	// cache, delta ones (it holds only the proxies that opened one).
	sotw  *sotwCache
	delta cache.SnapshotCache

	// gen is the config generation last built from; roundMu serializes
	// the rounds that publish a new one and rebuild every proxy.
	gen     atomic.Pointer[generation]
	roundMu sync.Mutex
	// platform is set by Changed: the registry must be rebuilt.
	platform atomic.Bool
	// firstBuilds bounds the first-time builds running at once.
	firstBuilds chan struct{}

	// changedAt is when the first config change not yet built happened
	// (Unix ns, 0: none), for Hooks.SnapshotSet.
	changedAt atomic.Int64

	// regMu serializes auto-registrations and their removals.
	regMu sync.Mutex

	// ads is go-control-plane's ADS, shared by every gRPC server serving it
	// (:15010 and, through Register, :15012) so stream IDs never collide.
	ads     serverv3.Server
	limited *limitedADS // ads, writing at most maxSending responses at once
	adsStop context.CancelFunc

	mu      sync.Mutex
	streams map[streamKey]*streamState
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
	if opts.ViewKey != nil && (opts.BuildShared == nil || opts.BuildOwn == nil) {
		return nil, errors.New("xdsserver: ViewKey needs BuildShared and BuildOwn")
	}
	if opts.TranslateGRPC == nil {
		opts.TranslateGRPC = translate.BuildGRPC
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
	if opts.Authenticated == nil {
		opts.Authenticated = verifiedClientCert
	}
	log := opts.Logger.With("component", "xdsserver")
	s := &Server{
		opts:        opts,
		log:         log,
		sotw:        newSOTWCache(),
		delta:       cache.NewSnapshotCache(true, cache.IDHash{}, cacheLogger{log}),
		firstBuilds: make(chan struct{}, max(2, runtime.GOMAXPROCS(0))),
		streams:     map[streamKey]*streamState{},
		proxies:     map[string]*proxyState{},
		pending:     map[config.Key]time.Time{},
		kick:        make(chan struct{}, 1),
		wake:        make(chan struct{}, 1),
	}
	var adsCtx context.Context
	adsCtx, s.adsStop = context.WithCancel(context.Background())
	s.ads = serverv3.NewServer(adsCtx, adsCache{sotw: s.sotw, delta: s.delta}, callbacks{s}, sotw.WithOrderedADS())
	s.limited = newLimitedADS(s.ads)
	opts.Store.Subscribe(func(int64) { s.configChanged() })
	return s, nil
}

// Changed tells the server that what Options.Registry returns may have
// changed (a platform registry such as Kubernetes' Services): snapshots are
// rebuilt after the debounce period, as after a config change. Safe to call
// from any goroutine.
func (s *Server) Changed() {
	s.platform.Store(true)
	s.configChanged()
}

// configChanged schedules a rebuild after the debounce period.
func (s *Server) configChanged() {
	s.changedAt.CompareAndSwap(0, time.Now().UnixNano())
	s.kickLoop()
}

// Register registers the ADS service on g, another gRPC server (the
// authenticated :15012), before g serves. Its streams share this server's
// snapshots and status; they end when g stops or Serve returns.
func (s *Server) Register(g *grpc.Server) {
	discoverygrpc.RegisterAggregatedDiscoveryServiceServer(g, s.limited)
}

// Serve serves ADS on lis (nil: on no listener of its own, only on the
// servers given to Register) until ctx ends, then stops the gRPC server
// (closing every stream) and returns. It returns nil after ctx ends.
func (s *Server) Serve(ctx context.Context, lis net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer s.adsStop()
	xds := s.limited
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
			s.round()
		case <-s.wake:
		case <-grace.C:
		}
		if next, ok := s.expireRegistrations(time.Now()); ok {
			grace.Reset(time.Until(next))
		}
	}
}

// round publishes the store's current config as a new generation and
// rebuilds every connected proxy from it.
func (s *Server) round() {
	s.roundMu.Lock()
	defer s.roundMu.Unlock()
	var changed time.Time
	if n := s.changedAt.Swap(0); n != 0 {
		changed = time.Unix(0, n)
	}
	g := s.nextGeneration(s.gen.Load(), s.platform.Swap(false))
	s.gen.Store(g)
	s.buildAll(g, changed)
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
