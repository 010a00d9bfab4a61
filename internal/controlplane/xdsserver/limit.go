package xdsserver

import (
	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
)

// maxSending bounds the state-of-the-world responses being written at
// once, over all streams. A response is marshaled into its own buffer
// while it is written (a proxy's clusters at a thousand services are
// megabytes), so two thousand proxies connecting together would otherwise
// hold gigabytes of buffers waiting for their sockets. A proxy slow to
// read holds one slot for as long as its socket is full; the others keep
// the rest, and gRPC keepalive ends the streams of dead ones.
const maxSending = 32

// limitedADS is the ADS service with at most maxSending responses being
// written at once.
type limitedADS struct {
	discoverygrpc.AggregatedDiscoveryServiceServer
	slots chan struct{}
}

func newLimitedADS(ads discoverygrpc.AggregatedDiscoveryServiceServer) *limitedADS {
	return &limitedADS{AggregatedDiscoveryServiceServer: ads, slots: make(chan struct{}, maxSending)}
}

// StreamAggregatedResources serves a state-of-the-world stream whose
// sends wait for a slot.
func (l *limitedADS) StreamAggregatedResources(s discoverygrpc.AggregatedDiscoveryService_StreamAggregatedResourcesServer) error {
	return l.AggregatedDiscoveryServiceServer.StreamAggregatedResources(limitedStream{s, l.slots})
}

type limitedStream struct {
	discoverygrpc.AggregatedDiscoveryService_StreamAggregatedResourcesServer
	slots chan struct{}
}

// Send writes resp once a slot is free, and frees it when written.
func (s limitedStream) Send(resp *discoverygrpc.DiscoveryResponse) error {
	select {
	case s.slots <- struct{}{}:
	case <-s.Context().Done():
		return s.Context().Err()
	}
	defer func() { <-s.slots }()
	return s.AggregatedDiscoveryService_StreamAggregatedResourcesServer.Send(resp)
}
