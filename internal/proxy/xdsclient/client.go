package xdsclient

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sort"
	"sync"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// Options configure a Client.
type Options struct {
	// Address of the management server, host:port.
	Address string
	// Node identifies this proxy.
	Node *core.Node
	// Handler applies updates.
	Handler Handler
	// DialOptions are added to the gRPC dial (e.g. transport credentials).
	DialOptions []grpc.DialOption
	// MaxBackoff bounds the reconnect back-off (default 5s).
	MaxBackoff time.Duration
	Logger     *slog.Logger
}

// Client is an ADS client (state of the world). It keeps the last ACKed
// resources of every type for config dumps.
type Client struct {
	opts Options
	log  *slog.Logger

	mu    sync.Mutex
	state map[string]*typeState // by type URL
	conn  bool
}

// typeState is what the client knows of one type.
type typeState struct {
	version   string // last ACKed
	nonce     string
	names     []string // subscribed names (nil = wildcard)
	resources map[string]proto.Message
	raw       []*anypb.Any
	updated   time.Time
	lastErr   string
}

// Snapshot is the last ACKed state of one type.
type Snapshot struct {
	TypeURL   string
	Version   string
	Updated   time.Time
	Resources []*anypb.Any
	LastNACK  string
}

// New returns a client; call Run to connect.
func New(opts Options) *Client {
	if opts.MaxBackoff == 0 {
		opts.MaxBackoff = 5 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	c := &Client{opts: opts, log: opts.Logger.With("component", "xdsclient"), state: map[string]*typeState{}}
	for _, t := range []string{ListenerType, ClusterType, RouteType, EndpointType} {
		c.state[t] = &typeState{}
	}
	return c
}

// Snapshots returns the last ACKed resources of every type.
func (c *Client) Snapshots() []Snapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Snapshot
	for _, t := range []string{ListenerType, RouteType, ClusterType, EndpointType} {
		s := c.state[t]
		out = append(out, Snapshot{TypeURL: t, Version: s.version, Updated: s.updated, Resources: s.raw, LastNACK: s.lastErr})
	}
	return out
}

// Connected reports whether the ADS stream is up.
func (c *Client) Connected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.conn
}

// Run connects and serves updates until ctx ends, reconnecting with back-off.
func (c *Client) Run(ctx context.Context) error {
	opts := append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, c.opts.DialOptions...)
	cc, err := grpc.NewClient(c.opts.Address, opts...)
	if err != nil {
		return fmt.Errorf("xds client for %s: %w", c.opts.Address, err)
	}
	defer cc.Close()
	backoff := 100 * time.Millisecond
	for {
		start := time.Now()
		err := c.stream(ctx, cc)
		c.setConnected(false)
		if ctx.Err() != nil {
			return nil
		}
		if time.Since(start) > 10*time.Second {
			backoff = 100 * time.Millisecond
		}
		c.log.Warn("xds stream ended; reconnecting", "address", c.opts.Address, "err", err, "backoff", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff + time.Duration(rand.Int64N(int64(backoff/2)+1))):
		}
		backoff = min(backoff*2, c.opts.MaxBackoff)
	}
}

func (c *Client) setConnected(v bool) {
	c.mu.Lock()
	c.conn = v
	c.mu.Unlock()
}

// stream runs one ADS stream.
func (c *Client) stream(ctx context.Context, cc *grpc.ClientConn) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s, err := discovery.NewAggregatedDiscoveryServiceClient(cc).StreamAggregatedResources(ctx)
	if err != nil {
		return err
	}
	c.mu.Lock()
	// A new stream subscribes afresh: routes and endpoints follow the first
	// listeners and clusters it receives.
	c.state[RouteType].names, c.state[EndpointType].names = nil, nil
	var first []*discovery.DiscoveryRequest
	for _, t := range []string{ClusterType, ListenerType} {
		st := c.state[t]
		first = append(first, &discovery.DiscoveryRequest{Node: c.opts.Node, TypeUrl: t, VersionInfo: st.version})
	}
	c.mu.Unlock()
	for _, r := range first {
		if err := s.Send(r); err != nil {
			return err
		}
	}
	for {
		resp, err := s.Recv()
		if err != nil {
			return err
		}
		c.setConnected(true)
		reqs := c.handle(resp)
		for _, r := range reqs {
			r.Node = c.opts.Node
			if err := s.Send(r); err != nil {
				return err
			}
		}
	}
}

// handle applies a response and returns the requests to send: the ACK or
// NACK, and new subscriptions for routes or endpoints.
func (c *Client) handle(resp *discovery.DiscoveryResponse) []*discovery.DiscoveryRequest {
	t := resp.GetTypeUrl()
	c.mu.Lock()
	st, ok := c.state[t]
	c.mu.Unlock()
	if !ok {
		return []*discovery.DiscoveryRequest{{TypeUrl: t, ResponseNonce: resp.GetNonce(),
			ErrorDetail: &status.Status{Code: int32(codes.InvalidArgument), Message: "weft proxy does not subscribe to " + t}}}
	}
	resources, err := decode(t, resp.GetResources())
	if err == nil {
		err = c.opts.Handler.Update(t, resp.GetVersionInfo(), resources)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	st.nonce = resp.GetNonce()
	if err != nil {
		st.lastErr = err.Error()
		c.log.Error("rejected config (NACK)", "type", shortType(t), "version", resp.GetVersionInfo(), "err", err)
		return []*discovery.DiscoveryRequest{{TypeUrl: t, VersionInfo: st.version, ResponseNonce: st.nonce, ResourceNames: st.names,
			ErrorDetail: &status.Status{Code: int32(codes.InvalidArgument), Message: err.Error()}}}
	}
	st.version, st.resources, st.raw, st.updated, st.lastErr = resp.GetVersionInfo(), resources, resp.GetResources(), time.Now(), ""
	c.log.Debug("applied config (ACK)", "type", shortType(t), "version", st.version, "resources", len(resources))
	out := []*discovery.DiscoveryRequest{{TypeUrl: t, VersionInfo: st.version, ResponseNonce: st.nonce, ResourceNames: st.names}}
	switch t {
	case ListenerType:
		out = append(out, c.resubscribe(RouteType, routeNames(resources))...)
	case ClusterType:
		out = append(out, c.resubscribe(EndpointType, edsNames(resources))...)
	}
	return out
}

// resubscribe returns a request when the names of a type changed. Locked.
func (c *Client) resubscribe(t string, names []string) []*discovery.DiscoveryRequest {
	st := c.state[t]
	if st.names != nil && equal(st.names, names) {
		return nil
	}
	st.names = names
	return []*discovery.DiscoveryRequest{{TypeUrl: t, VersionInfo: st.version, ResponseNonce: st.nonce, ResourceNames: names}}
}

func decode(t string, anys []*anypb.Any) (map[string]proto.Message, error) {
	out := make(map[string]proto.Message, len(anys))
	for _, a := range anys {
		if a.GetTypeUrl() != t {
			return nil, fmt.Errorf("resource of type %s in a %s response", a.GetTypeUrl(), shortType(t))
		}
		m, err := a.UnmarshalNew()
		if err != nil {
			return nil, fmt.Errorf("decoding %s: %w", shortType(t), err)
		}
		name := resourceName(m)
		if name == "" {
			return nil, errors.New("a " + shortType(t) + " resource has no name")
		}
		out[name] = m
	}
	return out, nil
}

func resourceName(m proto.Message) string {
	switch r := m.(type) {
	case interface{ GetName() string }:
		return r.GetName()
	case interface{ GetClusterName() string }:
		return r.GetClusterName()
	}
	return ""
}

// routeNames lists the RDS route configs the listeners' HTTP connection managers use.
func routeNames(ls map[string]proto.Message) []string {
	set := map[string]bool{}
	for _, m := range ls {
		for _, fc := range m.(*listener.Listener).GetFilterChains() {
			for _, f := range fc.GetFilters() {
				h := &hcm.HttpConnectionManager{}
				if f.GetTypedConfig().MessageIs(h) && f.GetTypedConfig().UnmarshalTo(h) == nil && h.GetRds() != nil {
					set[h.GetRds().GetRouteConfigName()] = true
				}
			}
		}
	}
	return sortedSet(set)
}

// edsNames lists the EDS service names of the clusters.
func edsNames(cs map[string]proto.Message) []string {
	set := map[string]bool{}
	for name, m := range cs {
		c := m.(*cluster.Cluster)
		if c.GetType() != cluster.Cluster_EDS {
			continue
		}
		if n := c.GetEdsClusterConfig().GetServiceName(); n != "" {
			name = n
		}
		set[name] = true
	}
	return sortedSet(set)
}

func sortedSet(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func shortType(t string) string {
	switch t {
	case ListenerType:
		return "LDS"
	case RouteType:
		return "RDS"
	case ClusterType:
		return "CDS"
	case EndpointType:
		return "EDS"
	}
	return t
}
