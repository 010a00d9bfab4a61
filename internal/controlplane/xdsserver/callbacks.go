package xdsserver

import (
	"context"
	"fmt"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/weft-mesh/weft/internal/config"
)

// streamKey identifies a stream: state-of-the-world and delta streams are
// numbered independently by go-control-plane.
type streamKey struct {
	delta bool
	id    int64
}

// streamState is what the server knows of one stream.
type streamState struct {
	// proxy is the stream's key in Server.proxies and the snapshot
	// caches ("" before its first request): the node ID, or for a
	// plaintext stream a key of its own (plaintextKey).
	proxy string
	// plaintext: the caller proved no identity (no client certificate):
	// it is served only the node it names, never registered, never
	// shares a snapshot with an authenticated proxy.
	plaintext bool
}

// plaintextKey is the key of a plaintext stream's proxy: the node ID and
// the stream, so an anonymous caller never shares (or takes over) the
// snapshot of an authenticated proxy claiming the same node ID.
func plaintextKey(nodeID string, key streamKey) string {
	kind := "sotw"
	if key.delta {
		kind = "delta"
	}
	return fmt.Sprintf("%s~plaintext-%s-%d", nodeID, kind, key.id)
}

// callbacks tracks streams, proxies and ACKs for the server.
type callbacks struct{ s *Server }

var _ serverv3.Callbacks = callbacks{}

// OnStreamOpen records a new state-of-the-world stream.
func (c callbacks) OnStreamOpen(ctx context.Context, id int64, typeURL string) error {
	c.s.openStream(ctx, streamKey{id: id}, typeURL)
	return nil
}

// OnStreamClosed forgets a state-of-the-world stream.
func (c callbacks) OnStreamClosed(id int64, _ *core.Node) { c.s.closeStream(streamKey{id: id}) }

// OnDeltaStreamOpen records a new delta stream.
func (c callbacks) OnDeltaStreamOpen(ctx context.Context, id int64, typeURL string) error {
	c.s.openStream(ctx, streamKey{delta: true, id: id}, typeURL)
	return nil
}

// OnDeltaStreamClosed forgets a delta stream.
func (c callbacks) OnDeltaStreamClosed(id int64, _ *core.Node) {
	c.s.closeStream(streamKey{delta: true, id: id})
}

// OnStreamRequest attaches the stream to its proxy and records ACKs and NACKs.
func (c callbacks) OnStreamRequest(id int64, req *discovery.DiscoveryRequest) error {
	return c.s.request(streamKey{id: id}, req.GetNode(), req.GetTypeUrl(), req.GetResponseNonce(), req.GetErrorDetail().GetMessage(), req.GetErrorDetail() != nil)
}

// OnStreamResponse records the version and nonce sent.
func (c callbacks) OnStreamResponse(_ context.Context, id int64, req *discovery.DiscoveryRequest, resp *discovery.DiscoveryResponse) {
	if node := c.s.response(streamKey{id: id}, resp.GetTypeUrl(), resp.GetVersionInfo(), resp.GetNonce()); node != "" {
		c.s.sotw.sent(node, resp.GetTypeUrl(), resp.GetVersionInfo(), req.GetResourceNames())
	}
}

// OnStreamDeltaRequest is OnStreamRequest for delta streams.
func (c callbacks) OnStreamDeltaRequest(id int64, req *discovery.DeltaDiscoveryRequest) error {
	return c.s.request(streamKey{delta: true, id: id}, req.GetNode(), req.GetTypeUrl(), req.GetResponseNonce(), req.GetErrorDetail().GetMessage(), req.GetErrorDetail() != nil)
}

// OnStreamDeltaResponse is OnStreamResponse for delta streams.
func (c callbacks) OnStreamDeltaResponse(id int64, _ *discovery.DeltaDiscoveryRequest, resp *discovery.DeltaDiscoveryResponse) {
	c.s.response(streamKey{delta: true, id: id}, resp.GetTypeUrl(), resp.GetSystemVersionInfo(), resp.GetNonce())
}

// OnFetchRequest refuses REST fetches: weft serves ADS only.
func (c callbacks) OnFetchRequest(context.Context, *discovery.DiscoveryRequest) error {
	return status.Error(codes.Unimplemented, "weft serves xDS over ADS only")
}

// OnFetchResponse is never called (fetches are refused).
func (c callbacks) OnFetchResponse(*discovery.DiscoveryRequest, *discovery.DiscoveryResponse) {}

func (s *Server) openStream(ctx context.Context, key streamKey, typeURL string) {
	plaintext := !s.opts.Authenticated(ctx)
	s.mu.Lock()
	s.streams[key] = &streamState{plaintext: plaintext}
	s.mu.Unlock()
	s.log.Debug("stream opened", "stream", key.id, "delta", key.delta, "type", typeURL, "plaintext", plaintext)
}

// request handles one request of a stream: the first one attaches the
// stream to its proxy; later ones carry ACKs and NACKs.
func (s *Server) request(key streamKey, node *core.Node, typeURL, nonce, errDetail string, isNack bool) error {
	nodeID, err := s.attach(key, node)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.proxies[nodeID]
	if p == nil {
		return nil
	}
	p.typeStatus(typeURL).Subscribed = true
	if nonce == "" {
		return nil
	}
	if isNack {
		p.nacked(typeURL, nonce, errDetail)
		if s.opts.Hooks.Rejected != nil {
			s.opts.Hooks.Rejected(typeURL)
		}
		s.log.Warn("proxy rejected config (NACK)", "proxy", nodeID, "type", typeURL, "nonce", nonce, "error", errDetail)
		return nil
	}
	p.acked(typeURL, nonce)
	return nil
}

// attach binds a stream to its proxy on the stream's first request,
// registering the proxy (and building its snapshot) when it is new. It
// returns the proxy's key. The node of a plaintext stream is renamed to
// that key, in the request itself, so the caches serve it its own snapshot.
func (s *Server) attach(key streamKey, node *core.Node) (string, error) {
	s.mu.Lock()
	st := s.streams[key]
	if st == nil { // never opened: go-control-plane always opens first
		s.mu.Unlock()
		return "", status.Error(codes.Internal, "xDS stream not open")
	}
	if st.proxy != "" {
		defer s.mu.Unlock()
		if !st.plaintext {
			return st.proxy, nil
		}
		if p := s.proxies[st.proxy]; p != nil && s.authenticatedLocked(p.info.proxy.ID) {
			return "", status.Errorf(codes.PermissionDenied, "node %q now belongs to a proxy authenticated on the secure xDS port", p.info.proxy.ID)
		}
		if node != nil {
			node.Id = st.proxy
		}
		return st.proxy, nil
	}
	s.mu.Unlock()
	info, err := parseNode(node)
	if err != nil {
		s.log.Warn("refusing xDS stream", "error", err)
		return "", status.Error(codes.InvalidArgument, err.Error())
	}
	id := info.proxy.ID
	if st.plaintext {
		if err := s.admitPlaintext(info); err != nil {
			s.log.Warn("refusing plaintext xDS stream", "proxy", id, "error", err)
			return "", err
		}
		id = plaintextKey(id, key)
		node.Id = id
	}
	s.mu.Lock()
	st.proxy = id
	p := s.proxies[id]
	first := p == nil
	if first {
		p = &proxyState{key: id, plaintext: st.plaintext, info: info, since: time.Now(), types: map[string]*TypeStatus{}, build: &proxyBuild{}}
		s.proxies[id] = p
	} else {
		// A proxy that reconnects before its old stream is closed: the
		// new stream starts over, and so does its sync status.
		p.info = info
		p.types = map[string]*TypeStatus{}
	}
	p.streams++
	p.delta = p.delta || key.delta
	s.mu.Unlock()
	if first {
		s.log.Info("proxy connected", "proxy", info.proxy.ID, "delta", key.delta, "plaintext", st.plaintext)
		if !st.plaintext {
			s.autoRegister(p)
		}
		s.buildFirst(p)
	}
	return id, nil
}

// admitPlaintext decides whether a caller with no identity may read the
// config of the node it names, and strips what the node claims of an
// identity. It refuses a node that asks to be registered (WEFT_SERVICE),
// one an authenticated proxy holds, and one whose auto-registered
// WorkloadEntry outlives its proxy (the grace of a reconnect): their config
// is theirs. What it serves carries no identity: a proxy without a
// certificate gets no mTLS settings, so no peer's SPIFFE identity. A
// proxyless gRPC node (GENERATOR=grpc) is the exception for mTLS: it
// always takes its config over plaintext xDS (grpc-go's bootstrap, as with
// Istio), its mTLS settings name only the certificate files on its own
// disk (never a secret), and claiming WEFT_MTLS without a certificate only
// makes its own calls fail and its own server STRICT.
func (s *Server) admitPlaintext(info *proxyInfo) error {
	px := &info.proxy
	if info.service != nil {
		return status.Errorf(codes.PermissionDenied,
			"plaintext xDS never registers workloads: node %q announces service %q; join the mesh with a token (WEFT_JOIN_TOKEN or --token-file) to register over the authenticated xDS port (15012)",
			px.ID, info.service.Name)
	}
	s.mu.Lock()
	held := s.authenticatedLocked(px.ID)
	s.mu.Unlock()
	if held {
		return status.Errorf(codes.PermissionDenied, "node %q belongs to a proxy authenticated on the secure xDS port; plaintext xDS serves no one else's config", px.ID)
	}
	// Registered by an authenticated proxy, which may be reconnecting.
	weKey := config.Key{Kind: config.KindWorkloadEntry, Namespace: px.Namespace, Name: px.Name}
	if o, ok := s.opts.Store.Get(weKey); ok && isAutoRegistered(o) {
		return status.Errorf(codes.PermissionDenied, "node %q is the registered workload %s; plaintext xDS serves no one else's config", px.ID, weKey)
	}
	// No identity without a certificate: no mTLS, no service account.
	if info.generator != GeneratorGRPC {
		px.MTLS = false
	}
	px.ServiceAccount = ""
	return nil
}

// authenticatedLocked reports whether an authenticated proxy with node ID
// id is connected. s.mu is held.
func (s *Server) authenticatedLocked(id string) bool {
	p := s.proxies[id] // authenticated proxies are keyed by their node ID
	return p != nil && !p.plaintext
}

// response records a response sent on a stream and returns the stream's
// node ID ("" before its first request).
func (s *Server) response(key streamKey, typeURL, version, nonce string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var id string
	if st := s.streams[key]; st != nil {
		id = st.proxy
	}
	if p := s.proxies[id]; p != nil {
		p.sent(typeURL, version, nonce)
	}
	if s.opts.Hooks.Pushed != nil {
		s.opts.Hooks.Pushed(typeURL)
	}
	return id
}

// closeStream detaches a stream; when it was its proxy's last one, the proxy
// is forgotten and its auto-registered WorkloadEntry scheduled for removal.
func (s *Server) closeStream(key streamKey) {
	s.mu.Lock()
	var id string
	if st := s.streams[key]; st != nil {
		id = st.proxy
	}
	delete(s.streams, key)
	p := s.proxies[id]
	if p == nil {
		s.mu.Unlock()
		return
	}
	p.streams--
	if p.streams > 0 {
		s.mu.Unlock()
		return
	}
	delete(s.proxies, id)
	if p.workload != nil {
		s.pending[*p.workload] = time.Now().Add(s.opts.RegistrationGrace)
		s.wakeLoop()
	}
	s.mu.Unlock()
	p.build.mu.Lock()
	p.build.closed = true
	s.sotw.clear(id)
	s.delta.ClearSnapshot(id)
	p.build.mu.Unlock()
	s.log.Info("proxy disconnected", "proxy", p.info.proxy.ID, "plaintext", p.plaintext)
}
