// Package discovery feeds the control plane from a Kubernetes API server:
// Services, EndpointSlices, Pods, Namespaces and Nodes become the service
// registry (as Istio's Kubernetes registry), Istio's CRDs become config
// objects in the store (validated as `weft apply` does), and one elected
// replica writes each Istio object's status back.
package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	istioclient "istio.io/client-go/pkg/clientset/versioned"
	istioinformers "istio.io/client-go/pkg/informers/externalversions"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/weft-mesh/weft/internal/controlplane/registry"
	"github.com/weft-mesh/weft/internal/controlplane/store"
)

// DefaultDebounce is how long Istio config must be quiet before a pass.
const DefaultDebounce = 100 * time.Millisecond

// maxDebounce bounds, in debounce periods, how long a stream of changes
// can delay a pass.
const maxDebounce = 10

// Options configures a Controller.
type Options struct {
	// Kube and Istio are the clientsets (fakes in tests).
	Kube  kubernetes.Interface
	Istio istioclient.Interface
	// Store receives the Istio objects, with Source store.SourceKubernetes.
	Store store.Store
	// Namespace is the control plane's namespace, where the Lease is.
	Namespace string
	// Identity names this replica in the Lease (the pod name); default: the host name.
	Identity string
	// NamespaceSelector, if set, limits the registry to the Services of
	// namespaces whose labels match (Istio's discoverySelectors).
	NamespaceSelector labels.Selector
	// OnChange is called (from an informer's goroutine, never under a
	// lock) when the registry may have changed.
	OnChange func()
	// Resync is the informers' resync period (0: none).
	Resync time.Duration
	// Debounce is how long Istio config must be quiet before it is stored (DefaultDebounce).
	Debounce time.Duration
	// LeaseDuration, RenewDeadline and RetryPeriod time the election
	// (DefaultLeaseDuration, DefaultRenewDeadline, DefaultRetryPeriod).
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	// Logger receives the logs; nil discards them.
	Logger *slog.Logger
}

// Controller watches the API server. Create it with New, then Start it.
type Controller struct {
	opts     Options
	log      *slog.Logger
	services *services
	istio    istioinformers.SharedInformerFactory
	kinds    []crdKind
	config   *configSync
	leader   atomic.Bool
	kick     chan struct{}
	wg       sync.WaitGroup
}

// New returns a controller for opts; Kube, Istio and Store are required.
func New(opts Options) (*Controller, error) {
	if opts.Kube == nil || opts.Istio == nil || opts.Store == nil {
		return nil, errors.New("discovery: Kube, Istio and Store are required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Debounce <= 0 {
		opts.Debounce = DefaultDebounce
	}
	if opts.LeaseDuration <= 0 {
		opts.LeaseDuration, opts.RenewDeadline, opts.RetryPeriod = DefaultLeaseDuration, DefaultRenewDeadline, DefaultRetryPeriod
	}
	if opts.Identity == "" {
		host, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("discovery: no Identity and no host name: %w", err)
		}
		opts.Identity = host
	}
	c := &Controller{opts: opts, log: opts.Logger.With("component", "kubernetes"), kick: make(chan struct{}, 1)}
	var err error
	c.services, err = newServices(opts.Kube, opts.Resync, opts.NamespaceSelector, c.log, func() {
		c.kickLoop() // analysis depends on the services
		if opts.OnChange != nil {
			opts.OnChange()
		}
	})
	if err != nil {
		return nil, err
	}
	c.istio = istioinformers.NewSharedInformerFactory(opts.Istio, opts.Resync)
	c.kinds = istioKinds(opts.Istio, c.istio)
	for _, k := range c.kinds {
		if _, err := k.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    func(any) { c.kickLoop() },
			UpdateFunc: func(old, cur any) { c.kickLoop() },
			DeleteFunc: func(any) { c.kickLoop() },
		}); err != nil {
			return nil, fmt.Errorf("watching Istio %s: %w", k.kind, err)
		}
	}
	c.config = newConfigSync(opts.Store, c.kinds, c.services.Registry, c.log)
	return c, nil
}

// Registry returns the registry of the cluster's Services (immutable).
func (c *Controller) Registry() *registry.Registry { return c.services.Registry() }

// Start starts the informers, waits until their caches are filled and the
// store holds the cluster's Istio config, then keeps both up to date and
// takes part in the status writer's election until ctx ends (Wait waits
// for that). It returns an error if the caches cannot be filled before ctx
// ends.
func (c *Controller) Start(ctx context.Context) error {
	if err := c.services.start(ctx); err != nil {
		return err
	}
	c.istio.Start(ctx.Done())
	synced := make([]cache.InformerSynced, len(c.kinds))
	for i, k := range c.kinds {
		synced[i] = k.informer.HasSynced
	}
	stopNagging := c.nagUnsynced(ctx)
	ok := cache.WaitForCacheSync(ctx.Done(), synced...)
	stopNagging()
	if !ok {
		return fmt.Errorf("syncing Istio config from the API server (are Istio's CRDs installed?): %w", context.Cause(ctx))
	}
	c.config.sync()
	c.log.Info("watching Kubernetes", "services", len(c.Registry().Services), "istio_objects", len(c.opts.Store.List("", "")))
	c.wg.Add(2)
	go func() {
		defer c.wg.Done()
		c.loop(ctx)
	}()
	go func() {
		defer c.wg.Done()
		election{client: c.opts.Kube, namespace: c.opts.Namespace, identity: c.opts.Identity,
			lease: c.opts.LeaseDuration, renew: c.opts.RenewDeadline, retry: c.opts.RetryPeriod, log: c.log,
		}.run(ctx, func() { c.leader.Store(true); c.kickLoop() }, func() { c.leader.Store(false) })
	}()
	return nil
}

// nagInterval is how often Start names the Istio kinds it still waits for.
const nagInterval = 15 * time.Second

// nagUnsynced logs, every nagInterval until stop is called, the Istio kinds
// whose list has not come (a missing CRD or RBAC rule blocks the start).
func (c *Controller) nagUnsynced(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(nagInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			var waiting []string
			for _, k := range c.kinds {
				if !k.informer.HasSynced() {
					waiting = append(waiting, k.kind+" ("+k.apiVersion+")")
				}
			}
			c.log.Warn("still waiting for Istio config from the API server: are the CRDs installed and readable?", "kinds", waiting)
		}
	}()
	return func() { cancel(); <-done }
}

// Wait waits, after Start's ctx ended, for every goroutine to end.
func (c *Controller) Wait() {
	c.wg.Wait()
	c.services.shutdown()
	c.istio.Shutdown()
}

// Leader reports whether this replica writes status now.
func (c *Controller) Leader() bool { return c.leader.Load() }

func (c *Controller) kickLoop() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// loop runs a pass after each quiet period following a change: store the
// Istio config, then, on the leader, write the status that changed.
func (c *Controller) loop(ctx context.Context) {
	t := time.NewTimer(time.Hour)
	t.Stop()
	defer t.Stop()
	var first time.Time // of the changes waiting for a pass
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.kick:
			// Wait for quiet, but never longer than maxDebounce periods in all.
			now := time.Now()
			if first.IsZero() {
				first = now
			}
			t.Reset(max(0, min(c.opts.Debounce, first.Add(maxDebounce*c.opts.Debounce).Sub(now))))
			continue
		case <-t.C:
			first = time.Time{}
		}
		objs := c.config.sync()
		if c.leader.Load() {
			c.config.writeStatuses(ctx, objs)
		}
	}
}
