package xdsserver

import (
	"context"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// streamKey identifies a stream: state-of-the-world and delta streams are
// numbered independently by go-control-plane.
type streamKey struct {
	delta bool
	id    int64
}

// callbacks tracks streams, proxies and ACKs for the server.
type callbacks struct{ s *Server }

var _ serverv3.Callbacks = callbacks{}

// OnStreamOpen records a new state-of-the-world stream.
func (c callbacks) OnStreamOpen(_ context.Context, id int64, typeURL string) error {
	c.s.openStream(streamKey{id: id}, typeURL)
	return nil
}

// OnStreamClosed forgets a state-of-the-world stream.
func (c callbacks) OnStreamClosed(id int64, _ *core.Node) { c.s.closeStream(streamKey{id: id}) }

// OnDeltaStreamOpen records a new delta stream.
func (c callbacks) OnDeltaStreamOpen(_ context.Context, id int64, typeURL string) error {
	c.s.openStream(streamKey{delta: true, id: id}, typeURL)
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

func (s *Server) openStream(key streamKey, typeURL string) {
	s.mu.Lock()
	s.streams[key] = ""
	s.mu.Unlock()
	s.log.Debug("stream opened", "stream", key.id, "delta", key.delta, "type", typeURL)
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
// registering the proxy (and building its snapshot) when it is new.
func (s *Server) attach(key streamKey, node *core.Node) (string, error) {
	s.mu.Lock()
	if id := s.streams[key]; id != "" {
		s.mu.Unlock()
		return id, nil
	}
	s.mu.Unlock()
	info, err := parseNode(node)
	if err != nil {
		s.log.Warn("refusing xDS stream", "error", err)
		return "", status.Error(codes.InvalidArgument, err.Error())
	}
	id := info.proxy.ID
	s.mu.Lock()
	s.streams[key] = id
	p := s.proxies[id]
	first := p == nil
	if first {
		p = &proxyState{info: info, since: time.Now(), types: map[string]*TypeStatus{}, build: &proxyBuild{}}
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
		s.log.Info("proxy connected", "proxy", id, "delta", key.delta)
		s.autoRegister(p)
		s.buildFirst(p)
	}
	return id, nil
}

// response records a response sent on a stream and returns the stream's
// node ID ("" before its first request).
func (s *Server) response(key streamKey, typeURL, version, nonce string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.streams[key]
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
	id := s.streams[key]
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
	s.log.Info("proxy disconnected", "proxy", id)
}
