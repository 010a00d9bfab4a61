package xdsclient

import (
	"context"
	"fmt"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// runSOTW runs one state-of-the-world ADS stream until it breaks.
func (c *Client) runSOTW(ctx context.Context, cc *grpc.ClientConn) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s, err := discovery.NewAggregatedDiscoveryServiceClient(cc).StreamAggregatedResources(ctx)
	if err != nil {
		return newError(KindConnect, "", fmt.Errorf("opening ADS stream to %s: %w", c.opts.Address, err))
	}
	send := func(r *discovery.DiscoveryRequest) error {
		r.Node = c.opts.Node
		if err := s.Send(r); err != nil {
			return newError(KindConnect, r.TypeUrl, fmt.Errorf("sending request: %w", err))
		}
		return nil
	}
	// Resubscribe with the last ACKed versions: an unchanged server sends
	// nothing new and the data plane keeps serving what it has.
	for _, t := range subscribeOrder {
		version, names, _ := c.current(t)
		if isDependent(t) && len(names) == 0 {
			continue // nothing referenced yet
		}
		if err := send(&discovery.DiscoveryRequest{TypeUrl: t, VersionInfo: version, ResourceNames: names}); err != nil {
			return err
		}
	}
	nonces := map[string]string{}
	for {
		resp, err := s.Recv()
		if err != nil {
			return newError(KindConnect, "", fmt.Errorf("receiving: %w", err))
		}
		c.setConnected(true)
		for _, r := range c.handleSOTW(ctx, resp, nonces) {
			if err := send(r); err != nil {
				return err
			}
		}
	}
}

// handleSOTW applies one response and returns the requests to send: its
// ACK or NACK, and a new subscription of the dependent type if it changed.
func (c *Client) handleSOTW(ctx context.Context, resp *discovery.DiscoveryResponse, nonces map[string]string) []*discovery.DiscoveryRequest {
	t := resp.GetTypeUrl()
	dec, ok := decoders[t]
	if !ok {
		err := newError(KindProtocol, t, fmt.Errorf("weft proxy did not subscribe to %s", t))
		c.log.Error("rejected config (NACK)", "err", err)
		return []*discovery.DiscoveryRequest{{TypeUrl: t, ResponseNonce: resp.GetNonce(), ErrorDetail: errorDetail(err)}}
	}
	nonces[t] = resp.GetNonce()
	var dependent string
	var names []string
	var changed bool
	err, repeated := c.repeatedNACK(ctx, t, resp.GetVersionInfo())
	if !repeated {
		var u update
		if u, err = decodeSOTW(dec, resp); err == nil {
			dependent, names, changed, err = c.apply(u)
		} else {
			c.recordNACK(t, resp.GetVersionInfo(), err)
		}
	}
	version, subscribed, _ := c.current(t)
	ack := &discovery.DiscoveryRequest{TypeUrl: t, VersionInfo: version, ResponseNonce: nonces[t], ResourceNames: subscribed}
	if err != nil {
		ack.ErrorDetail = errorDetail(err)
		return []*discovery.DiscoveryRequest{ack}
	}
	out := []*discovery.DiscoveryRequest{ack}
	if changed {
		depVersion, _, _ := c.current(dependent)
		out = append(out, &discovery.DiscoveryRequest{
			TypeUrl: dependent, VersionInfo: depVersion, ResponseNonce: nonces[dependent], ResourceNames: names,
		})
	}
	return out
}

// decodeSOTW decodes every resource of a state-of-the-world response.
func decodeSOTW(dec decoder, resp *discovery.DiscoveryResponse) (update, error) {
	u := update{
		typeURL: dec.typeURL, version: resp.GetVersionInfo(),
		raw: map[string]*anypb.Any{}, decoded: map[string]proto.Message{},
	}
	for _, a := range resp.GetResources() {
		name, m, err := dec.decode(a)
		if err != nil {
			return u, newError(KindDecode, dec.typeURL, err)
		}
		if _, dup := u.decoded[name]; dup {
			return u, newError(KindDecode, dec.typeURL, fmt.Errorf("resource %q appears twice", name))
		}
		u.raw[name], u.decoded[name] = a, m
	}
	return u, nil
}

// errorDetail is the NACK's error_detail for err.
func errorDetail(err error) *status.Status {
	return &status.Status{Code: int32(codes.InvalidArgument), Message: err.Error()}
}
