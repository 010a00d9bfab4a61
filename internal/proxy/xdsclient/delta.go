package xdsclient

import (
	"context"
	"fmt"
	"maps"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
)

// wildcard is delta xDS's explicit wildcard subscription.
const wildcard = "*"

// runDelta runs one incremental (delta) ADS stream until it breaks.
func (c *Client) runDelta(ctx context.Context, cc *grpc.ClientConn) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s, err := discovery.NewAggregatedDiscoveryServiceClient(cc).DeltaAggregatedResources(ctx)
	if err != nil {
		return newError(KindConnect, "", fmt.Errorf("opening delta ADS stream to %s: %w", c.opts.Address, err))
	}
	send := func(r *discovery.DeltaDiscoveryRequest) error {
		r.Node = c.opts.Node
		if err := s.Send(r); err != nil {
			return newError(KindConnect, r.TypeUrl, fmt.Errorf("sending request: %w", err))
		}
		return nil
	}
	// Resubscribe telling the server which versions we hold, so it sends
	// only what changed while we were away.
	for _, t := range subscribeOrder {
		_, names, versions := c.current(t)
		sub := []string{wildcard}
		if isDependent(t) {
			if len(names) == 0 {
				continue
			}
			sub = names
		}
		if err := send(&discovery.DeltaDiscoveryRequest{TypeUrl: t, ResourceNamesSubscribe: sub, InitialResourceVersions: versions}); err != nil {
			return err
		}
	}
	for {
		resp, err := s.Recv()
		if err != nil {
			return newError(KindConnect, "", fmt.Errorf("receiving: %w", err))
		}
		c.setConnected(true)
		for _, r := range c.handleDelta(ctx, resp) {
			if err := send(r); err != nil {
				return err
			}
		}
	}
}

// handleDelta merges one delta response into the ACKed set of its type,
// applies the result and returns the ACK or NACK and any change of the
// dependent type's subscription.
func (c *Client) handleDelta(ctx context.Context, resp *discovery.DeltaDiscoveryResponse) []*discovery.DeltaDiscoveryRequest {
	t := resp.GetTypeUrl()
	ack := &discovery.DeltaDiscoveryRequest{TypeUrl: t, ResponseNonce: resp.GetNonce()}
	dec, ok := decoders[t]
	if !ok {
		err := newError(KindProtocol, t, fmt.Errorf("weft proxy did not subscribe to %s", t))
		c.log.Error("rejected config (NACK)", "err", err)
		ack.ErrorDetail = errorDetail(err)
		return []*discovery.DeltaDiscoveryRequest{ack}
	}
	if err, repeated := c.repeatedNACK(ctx, t, resp.GetSystemVersionInfo()); repeated {
		ack.ErrorDetail = errorDetail(err)
		return []*discovery.DeltaDiscoveryRequest{ack}
	}
	u, err := c.mergeDelta(dec, resp)
	if err != nil {
		c.recordNACK(t, resp.GetSystemVersionInfo(), err)
		ack.ErrorDetail = errorDetail(err)
		return []*discovery.DeltaDiscoveryRequest{ack}
	}
	c.mu.Lock()
	before := c.state[dec.dependent]
	var old []string
	if before != nil {
		old = before.names
	}
	c.mu.Unlock()
	dependent, names, changed, err := c.apply(u)
	if err != nil {
		ack.ErrorDetail = errorDetail(err)
		return []*discovery.DeltaDiscoveryRequest{ack}
	}
	out := []*discovery.DeltaDiscoveryRequest{ack}
	if changed {
		sub, unsub := diffNames(old, names)
		out = append(out, &discovery.DeltaDiscoveryRequest{TypeUrl: dependent, ResourceNamesSubscribe: sub, ResourceNamesUnsubscribe: unsub})
		c.dropUnsubscribed(dependent, unsub)
	}
	return out
}

// mergeDelta builds the complete new set of a type: the ACKed set minus the
// removed resources plus the changed ones (decoded).
func (c *Client) mergeDelta(dec decoder, resp *discovery.DeltaDiscoveryResponse) (update, error) {
	c.mu.Lock()
	st := c.state[dec.typeURL]
	u := update{
		typeURL: dec.typeURL, version: resp.GetSystemVersionInfo(),
		raw: maps.Clone(st.raw), decoded: maps.Clone(st.decoded), versions: maps.Clone(st.versions),
	}
	c.mu.Unlock()
	for _, name := range resp.GetRemovedResources() {
		delete(u.raw, name)
		delete(u.decoded, name)
		delete(u.versions, name)
	}
	for _, r := range resp.GetResources() {
		name, m, err := dec.decode(r.GetResource())
		if err != nil {
			return u, newError(KindDecode, dec.typeURL, err)
		}
		if r.GetName() != "" && r.GetName() != name {
			return u, newError(KindDecode, dec.typeURL, fmt.Errorf("resource %q is named %q inside", r.GetName(), name))
		}
		u.raw[name], u.decoded[name], u.versions[name] = r.GetResource(), m, r.GetVersion()
	}
	if u.version == "" {
		u.version = resp.GetNonce()
	}
	return u, nil
}

// dropUnsubscribed forgets resources of t no longer subscribed (the server
// will not tell us they are gone) and hands the smaller set to the Handler.
func (c *Client) dropUnsubscribed(t string, names []string) {
	if len(names) == 0 {
		return
	}
	c.mu.Lock()
	st := c.state[t]
	raw, decoded, versions := maps.Clone(st.raw), maps.Clone(st.decoded), maps.Clone(st.versions)
	version := st.version
	c.mu.Unlock()
	for _, n := range names {
		delete(raw, n)
		delete(decoded, n)
		delete(versions, n)
	}
	if _, _, _, err := c.apply(update{typeURL: t, version: version, raw: raw, decoded: decoded, versions: versions}); err != nil {
		c.log.Warn("dropping unsubscribed resources", "type", shortType(t), "err", err)
	}
}

// diffNames returns the names in b not in a (subscribe) and in a not in b.
func diffNames(a, b []string) (added, removed []string) {
	in := func(s []string) map[string]bool {
		m := make(map[string]bool, len(s))
		for _, x := range s {
			m[x] = true
		}
		return m
	}
	ina, inb := in(a), in(b)
	for _, x := range b {
		if !ina[x] {
			added = append(added, x)
		}
	}
	for _, x := range a {
		if !inb[x] {
			removed = append(removed, x)
		}
	}
	return added, removed
}
