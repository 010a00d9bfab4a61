package xdsclient

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// Protocol variants of ADS.
const (
	// StateOfTheWorld: every response carries the whole set of a type.
	StateOfTheWorld = "sotw"
	// Delta: responses carry changed and removed resources only.
	Delta = "delta"
)

// Options configure a Client.
type Options struct {
	// Address of the management server, host:port.
	Address string
	// Node identifies this proxy.
	Node *core.Node
	// Handler applies updates.
	Handler Handler
	// Protocol is StateOfTheWorld (default) or Delta.
	Protocol string
	// DialOptions come after the client's own (plaintext) dial options, so
	// transport credentials given here replace plaintext.
	DialOptions []grpc.DialOption
	// MaxBackoff bounds the reconnect back-off (default 5s).
	MaxBackoff time.Duration
	// Logger receives the client's logs (default slog.Default()).
	Logger *slog.Logger
}

// Client is an ADS client. It subscribes to every listener and cluster,
// then to the route configs and endpoints they reference, hands each update
// to the Handler and keeps the last ACKed resources of every type for
// config dumps. Its methods are safe for concurrent use.
type Client struct {
	opts Options
	log  *slog.Logger

	mu        sync.Mutex
	state     map[string]*typeState // by type URL
	connected bool
}

// typeState is what the client holds of one type: the last ACKed set.
type typeState struct {
	version  string
	raw      map[string]*anypb.Any
	decoded  map[string]proto.Message
	versions map[string]string // per-resource versions (delta)
	updated  time.Time
	lastNACK string
	// nackVersion is the version last rejected and nackErr why; a server
	// resending it gets the same NACK after nackDelay, without a retry.
	nackVersion string
	nackErr     error
	nackDelay   time.Duration
	// names is the subscription of a dependent type (RDS, EDS), derived
	// from the ACKed listeners or clusters.
	names []string
}

// Snapshot is the last ACKed state of one type.
type Snapshot struct {
	TypeURL   string
	Version   string
	Updated   time.Time
	Resources []*anypb.Any // sorted by name
	// LastNACK is the error of the last rejected response, if the last
	// response of this type was rejected.
	LastNACK string
}

// subscribeOrder is the order of the initial subscriptions.
var subscribeOrder = []string{ClusterType, ListenerType, RouteType, EndpointType}

// dumpOrder is Envoy's config dump order.
var dumpOrder = []string{ListenerType, RouteType, ClusterType, EndpointType}

// New returns a client; call Run to connect.
func New(opts Options) (*Client, error) {
	if opts.Address == "" || opts.Node == nil || opts.Handler == nil {
		return nil, fmt.Errorf("xds client: Address, Node and Handler are required")
	}
	switch opts.Protocol {
	case "":
		opts.Protocol = StateOfTheWorld
	case StateOfTheWorld, Delta:
	default:
		return nil, fmt.Errorf("xds client: protocol %q: want %q or %q", opts.Protocol, StateOfTheWorld, Delta)
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 5 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	c := &Client{opts: opts, log: opts.Logger.With("component", "xdsclient"), state: map[string]*typeState{}}
	for _, t := range subscribeOrder {
		c.state[t] = &typeState{raw: map[string]*anypb.Any{}, decoded: map[string]proto.Message{}, versions: map[string]string{}}
	}
	return c, nil
}

// Snapshots returns the last ACKed resources of every type, in Envoy's
// config dump order (listeners, routes, clusters, endpoints).
func (c *Client) Snapshots() []Snapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Snapshot, 0, len(dumpOrder))
	for _, t := range dumpOrder {
		s := c.state[t]
		names := make([]string, 0, len(s.raw))
		for n := range s.raw {
			names = append(names, n)
		}
		sort.Strings(names)
		res := make([]*anypb.Any, len(names))
		for i, n := range names {
			res[i] = s.raw[n]
		}
		out = append(out, Snapshot{TypeURL: t, Version: s.version, Updated: s.updated, Resources: res, LastNACK: s.lastNACK})
	}
	return out
}

// Connected reports whether an ADS stream is up.
func (c *Client) Connected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.connected
}

func (c *Client) setConnected(v bool) {
	c.mu.Lock()
	c.connected = v
	c.mu.Unlock()
}

// Run connects and serves updates until ctx ends, reconnecting with
// jittered exponential back-off; the Handler keeps its config meanwhile.
// It returns nil when ctx ends, or a KindConnect *Error if the address
// cannot be used at all.
func (c *Client) Run(ctx context.Context) error {
	dial := append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, c.opts.DialOptions...)
	cc, err := grpc.NewClient(c.opts.Address, dial...)
	if err != nil {
		return newError(KindConnect, "", fmt.Errorf("dialling %s: %w", c.opts.Address, err))
	}
	defer cc.Close()
	const minBackoff = 100 * time.Millisecond
	backoff := minBackoff
	for {
		start := time.Now()
		var err error
		if c.opts.Protocol == Delta {
			err = c.runDelta(ctx, cc)
		} else {
			err = c.runSOTW(ctx, cc)
		}
		c.setConnected(false)
		if ctx.Err() != nil {
			return nil
		}
		if time.Since(start) > 2*c.opts.MaxBackoff {
			backoff = minBackoff // the stream was healthy for a while
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		c.log.Warn("xds stream ended; reconnecting", "address", c.opts.Address, "err", err, "in", wait)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		backoff = min(backoff*2, c.opts.MaxBackoff)
	}
}

// update is one decoded response, ready to be handed to the Handler.
type update struct {
	typeURL  string
	version  string
	raw      map[string]*anypb.Any
	decoded  map[string]proto.Message
	versions map[string]string
}

// apply hands an update to the Handler and, if it is accepted, makes it the
// last ACKed state. It returns the new subscription of the dependent type
// when that changed (changed false otherwise).
func (c *Client) apply(u update) (dependent string, names []string, changed bool, err error) {
	if err := c.opts.Handler.Update(u.typeURL, u.version, u.decoded); err != nil {
		err = newError(KindRejected, u.typeURL, err)
		c.recordNACK(u.typeURL, u.version, err)
		return "", nil, false, err
	}
	dec := decoders[u.typeURL]
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.state[u.typeURL]
	st.version, st.raw, st.decoded, st.updated, st.lastNACK = u.version, u.raw, u.decoded, time.Now(), ""
	st.nackVersion, st.nackErr, st.nackDelay = "", nil, 0
	if u.versions != nil {
		st.versions = u.versions
	}
	c.log.Debug("applied config (ACK)", "type", shortType(u.typeURL), "version", u.version, "resources", len(u.decoded))
	if dec.dependent == "" {
		return "", nil, false, nil
	}
	names = dec.follow(u.decoded)
	dep := c.state[dec.dependent]
	if slices.Equal(dep.names, names) {
		return "", nil, false, nil
	}
	dep.names = names
	return dec.dependent, names, true, nil
}

// recordNACK remembers why version of typeURL was rejected.
func (c *Client) recordNACK(typeURL, version string, err error) {
	c.log.Error("rejected config (NACK)", "type", shortType(typeURL), "version", version, "err", err)
	c.mu.Lock()
	if st, ok := c.state[typeURL]; ok {
		st.lastNACK, st.nackVersion, st.nackErr = err.Error(), version, err
	}
	c.mu.Unlock()
}

// repeatedNACK returns the error of the last NACK when a server resends the
// version it had (go-control-plane answers a NACK with the same config at
// once). Versions are content hashes, so the answer cannot change; it waits
// a growing delay (up to MaxBackoff) so the exchange does not spin.
func (c *Client) repeatedNACK(ctx context.Context, typeURL, version string) (error, bool) {
	c.mu.Lock()
	st := c.state[typeURL]
	if st == nil || version == "" || st.nackErr == nil || st.nackVersion != version {
		c.mu.Unlock()
		return nil, false
	}
	st.nackDelay = min(max(2*st.nackDelay, 100*time.Millisecond), c.opts.MaxBackoff)
	delay, err := st.nackDelay, st.nackErr
	c.mu.Unlock()
	select {
	case <-ctx.Done():
	case <-time.After(delay):
	}
	return err, true
}

// current returns a type's ACKed version, subscription and resource versions.
func (c *Client) current(typeURL string) (version string, names []string, versions map[string]string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.state[typeURL]
	versions = make(map[string]string, len(st.versions))
	for k, v := range st.versions {
		versions[k] = v
	}
	return st.version, st.names, versions
}
