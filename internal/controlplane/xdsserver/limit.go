package xdsserver

import (
	"context"
	"strconv"
	"sync"
	"time"

	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/protobuf/proto"
)

// Bounds of the responses on their way to proxies. gRPC's Send returns as
// soon as a response is queued, its marshaled buffer then waits for the
// proxy's socket; a proxy's clusters at a thousand services are megabytes,
// so two thousand proxies connecting together would hold gigabytes. A
// response counts against sendBudget from its Send until the proxy ACKs
// or NACKs it (its nonce comes back), its stream ends, or sendHold passes:
// a proxy slow to read holds only its own responses, and only for a while,
// so it never stops the others for long.
const (
	sendBudget = 128 << 20
	sendHold   = 10 * time.Second
)

// budget is a weighted semaphore of bytes, granted first come first
// served (one wake-up per grant, not one per waiter), whose waiters give
// up with their context.
type budget struct {
	mu      sync.Mutex
	free    int64
	waiters []*waiter
}

type waiter struct {
	n     int64
	ready chan struct{} // closed when granted
}

func newBudget(n int64) *budget { return &budget{free: n} }

// acquire takes n bytes (at most the whole budget), waiting for them.
func (b *budget) acquire(ctx context.Context, n int64) (int64, error) {
	n = min(n, sendBudget)
	b.mu.Lock()
	if len(b.waiters) == 0 && b.free >= n {
		b.free -= n
		b.mu.Unlock()
		return n, nil
	}
	w := &waiter{n: n, ready: make(chan struct{})}
	b.waiters = append(b.waiters, w)
	b.mu.Unlock()
	select {
	case <-w.ready:
		return n, nil
	case <-ctx.Done():
		b.mu.Lock()
		defer b.mu.Unlock()
		select {
		case <-w.ready: // granted meanwhile: give it back
			b.free += n
			b.grantLocked()
		default:
			for i, x := range b.waiters {
				if x == w {
					b.waiters = append(b.waiters[:i], b.waiters[i+1:]...)
					break
				}
			}
		}
		return 0, ctx.Err()
	}
}

func (b *budget) release(n int64) {
	b.mu.Lock()
	b.free += n
	b.grantLocked()
	b.mu.Unlock()
}

// grantLocked wakes the waiters at the head of the queue that now fit.
func (b *budget) grantLocked() {
	for len(b.waiters) > 0 && b.free >= b.waiters[0].n {
		w := b.waiters[0]
		b.waiters = b.waiters[1:]
		b.free -= w.n
		close(w.ready)
	}
}

// limitedADS is the ADS service with its state-of-the-world responses
// bounded by a shared budget.
type limitedADS struct {
	discoverygrpc.AggregatedDiscoveryServiceServer
	budget *budget
	names  *interner
}

func newLimitedADS(ads discoverygrpc.AggregatedDiscoveryServiceServer) *limitedADS {
	return &limitedADS{AggregatedDiscoveryServiceServer: ads, budget: newBudget(sendBudget), names: newInterner()}
}

// StreamAggregatedResources serves a state-of-the-world stream whose sends
// wait for budget.
func (l *limitedADS) StreamAggregatedResources(s discoverygrpc.AggregatedDiscoveryService_StreamAggregatedResourcesServer) error {
	ls := &limitedStream{AggregatedDiscoveryService_StreamAggregatedResourcesServer: s, budget: l.budget, names: l.names, held: map[string][]*held{}}
	defer ls.releaseAll()
	return l.AggregatedDiscoveryServiceServer.StreamAggregatedResources(ls)
}

// limitedStream is one stream and the responses it holds budget for.
type limitedStream struct {
	discoverygrpc.AggregatedDiscoveryService_StreamAggregatedResourcesServer
	budget *budget
	names  *interner

	mu   sync.Mutex
	held map[string][]*held // by type URL, oldest first
}

// held is one response's share of the budget, given back once.
type held struct {
	nonce int64
	once  sync.Once
	n     int64
	timer *time.Timer
}

// Send waits for budget for resp, then sends it.
func (s *limitedStream) Send(resp *discoverygrpc.DiscoveryResponse) error {
	n, err := s.budget.acquire(s.Context(), int64(proto.Size(resp)))
	if err != nil {
		return err
	}
	nonce, _ := strconv.ParseInt(resp.GetNonce(), 10, 64)
	h := &held{nonce: nonce, n: n}
	h.timer = time.AfterFunc(sendHold, func() { s.give(h) })
	s.mu.Lock()
	s.held[resp.GetTypeUrl()] = append(s.held[resp.GetTypeUrl()], h)
	s.mu.Unlock()
	return s.AggregatedDiscoveryService_StreamAggregatedResourcesServer.Send(resp)
}

// Recv receives a request; an ACK or NACK gives back the budget of the
// responses of its type up to its nonce.
func (s *limitedStream) Recv() (*discoverygrpc.DiscoveryRequest, error) {
	req, err := s.AggregatedDiscoveryService_StreamAggregatedResourcesServer.Recv()
	if err != nil {
		return req, err
	}
	s.names.intern(req.ResourceNames)
	if req.GetResponseNonce() == "" {
		return req, nil
	}
	nonce, perr := strconv.ParseInt(req.GetResponseNonce(), 10, 64)
	if perr != nil {
		return req, nil
	}
	var done []*held
	s.mu.Lock()
	hs := s.held[req.GetTypeUrl()]
	for len(hs) > 0 && hs[0].nonce <= nonce {
		done = append(done, hs[0])
		hs = hs[1:]
	}
	s.held[req.GetTypeUrl()] = hs
	s.mu.Unlock()
	for _, h := range done {
		s.give(h)
	}
	return req, nil
}

func (s *limitedStream) give(h *held) {
	h.once.Do(func() {
		h.timer.Stop()
		s.budget.release(h.n)
	})
}

func (s *limitedStream) releaseAll() {
	s.mu.Lock()
	var all []*held
	for _, hs := range s.held {
		all = append(all, hs...)
	}
	s.held = map[string][]*held{}
	s.mu.Unlock()
	for _, h := range all {
		s.give(h)
	}
}

// interner makes the resource names of requests share one string each.
// Every proxy's EDS request names each of its clusters (thousands at a
// thousand services) and the server keeps the last request and its
// subscription per stream: without this, each proxy would hold its own
// copy of every name, most of the control plane's memory at scale. The
// table holds each distinct name once; it grows with the mesh's names,
// not with its proxies.
type interner struct {
	mu    sync.RWMutex
	names map[string]string
}

func newInterner() *interner { return &interner{names: map[string]string{}} }

// intern replaces every name by the table's copy, adding new ones.
func (in *interner) intern(names []string) {
	if len(names) == 0 {
		return
	}
	var missing []int
	in.mu.RLock()
	for i, n := range names {
		if c, ok := in.names[n]; ok {
			names[i] = c
		} else {
			missing = append(missing, i)
		}
	}
	in.mu.RUnlock()
	if len(missing) == 0 {
		return
	}
	in.mu.Lock()
	for _, i := range missing {
		if c, ok := in.names[names[i]]; ok {
			names[i] = c
		} else {
			in.names[names[i]] = names[i]
		}
	}
	in.mu.Unlock()
}
