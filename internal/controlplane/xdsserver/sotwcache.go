package xdsserver

import (
	"context"
	"fmt"
	"sync"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/weft-mesh/weft/internal/controlplane/translate"
)

// wirePart is a set of resources of one type marshaled once, shared by
// every proxy whose snapshot holds it (a view's shared part): a push to a
// thousand proxies marshals each resource once, not a thousand times.
// It is never modified once built.
type wirePart struct {
	names []string
	res   []*anypb.Any
	index map[string]int // by name
}

// wireSnapshot is one proxy's resources as sent, by type URL.
type wireSnapshot map[string]wireType

// wireType is one type of a wireSnapshot: its version and its parts.
type wireType struct {
	version string
	parts   []*wirePart
	// missing, if set, answers for a requested name the parts lack (nil:
	// leave it out).
	missing func(name string) *anypb.Any
}

// wireParts marshals translate's output, one part per type URL.
func wireParts(out *translate.Output) (map[string]*wirePart, error) {
	parts := make(map[string]*wirePart, len(TypeURLs))
	for typeURL, res := range map[string][]types.Resource{
		ClusterType: out.Clusters, EndpointType: out.Endpoints, ListenerType: out.Listeners, RouteType: out.Routes,
	} {
		p := &wirePart{names: make([]string, len(res)), res: make([]*anypb.Any, len(res)), index: make(map[string]int, len(res))}
		for i, r := range res {
			data, err := proto.MarshalOptions{Deterministic: true}.Marshal(r)
			if err != nil {
				return nil, fmt.Errorf("marshaling %s %q: %w", typeURL, cache.GetResourceName(r), err)
			}
			p.names[i] = cache.GetResourceName(r)
			p.res[i] = &anypb.Any{TypeUrl: typeURL, Value: data}
			p.index[p.names[i]] = i
		}
		parts[typeURL] = p
	}
	return parts, nil
}

// newWireSnapshot joins parts (a shared part and an own part, or a whole
// proxy's) under versions.
func newWireSnapshot(versions map[string]string, parts ...map[string]*wirePart) wireSnapshot {
	ws := make(wireSnapshot, len(TypeURLs))
	for _, t := range TypeURLs {
		wt := wireType{version: versions[t]}
		for _, p := range parts {
			if p[t] != nil && len(p[t].res) > 0 {
				wt.parts = append(wt.parts, p[t])
			}
		}
		ws[t] = wt
	}
	return ws
}

// adsCache is the server's go-control-plane cache: state-of-the-world
// watches are answered from wire snapshots (sotwCache), delta ones by
// go-control-plane's SnapshotCache, which gets snapshots only for the
// proxies that opened a delta stream.
type adsCache struct {
	sotw  *sotwCache
	delta cache.SnapshotCache
}

var _ cache.Cache = adsCache{}

// CreateWatch implements cache.ConfigWatcher (state of the world).
func (c adsCache) CreateWatch(req *cache.Request, sub cache.Subscription, ch chan cache.Response) (func(), error) {
	return c.sotw.createWatch(req, ch), nil
}

// CreateDeltaWatch implements cache.ConfigWatcher (delta).
func (c adsCache) CreateDeltaWatch(req *cache.DeltaRequest, sub cache.Subscription, ch chan cache.DeltaResponse) (func(), error) {
	return c.delta.CreateDeltaWatch(req, sub, ch)
}

// Fetch refuses REST fetches: weft serves ADS only.
func (c adsCache) Fetch(context.Context, *cache.Request) (cache.Response, error) {
	return nil, status.Error(codes.Unimplemented, "weft serves xDS over ADS only")
}

// sotwCache holds every proxy's wire snapshot and its open watches. Its
// methods are safe for concurrent use; responses are sent on the
// watches' channels, which go-control-plane's ADS buffers per type, so
// sending never blocks.
type sotwCache struct {
	mu    sync.Mutex
	nodes map[string]*sotwNode
}

type sotwNode struct {
	snap    wireSnapshot // nil: none yet
	watches map[*sotwWatch]bool
	// sent is, per type, the version and the names last answered, so
	// that a request for the same version and no new name waits.
	sent map[string]sentState
}

type sentState struct {
	version string
	names   []string // the request's (nil: all)
}

type sotwWatch struct {
	req *cache.Request
	ch  chan cache.Response
}

func newSOTWCache() *sotwCache { return &sotwCache{nodes: map[string]*sotwNode{}} }

func (c *sotwCache) node(id string) *sotwNode {
	n := c.nodes[id]
	if n == nil {
		n = &sotwNode{watches: map[*sotwWatch]bool{}, sent: map[string]sentState{}}
		c.nodes[id] = n
	}
	return n
}

// createWatch answers req now if the node's snapshot has what it lacks,
// else keeps the watch open until set brings it.
func (c *sotwCache) createWatch(req *cache.Request, ch chan cache.Response) func() {
	id := req.GetNode().GetId()
	w := &sotwWatch{req: req, ch: ch}
	c.mu.Lock()
	n := c.node(id)
	if resp := n.answer(w); resp != nil {
		c.mu.Unlock()
		ch <- resp
		return func() {}
	}
	n.watches[w] = true
	c.mu.Unlock()
	return func() {
		c.mu.Lock()
		if n := c.nodes[id]; n != nil {
			delete(n.watches, w)
		}
		c.mu.Unlock()
	}
}

// set replaces a node's snapshot and answers its watches that now lack
// something, in TypeURLs' order (clusters before their endpoints,
// listeners before their routes), as Envoy wants them.
func (c *sotwCache) set(id string, snap wireSnapshot) {
	type due struct {
		w    *sotwWatch
		resp cache.Response
	}
	var out []due
	c.mu.Lock()
	n := c.node(id)
	n.snap = snap
	for _, t := range TypeURLs {
		for w := range n.watches {
			if w.req.GetTypeUrl() != t {
				continue
			}
			if resp := n.answer(w); resp != nil {
				delete(n.watches, w)
				out = append(out, due{w, resp})
			}
		}
	}
	c.mu.Unlock()
	for _, d := range out {
		d.w.ch <- d.resp
	}
}

// clear forgets a node (its last stream closed).
func (c *sotwCache) clear(id string) {
	c.mu.Lock()
	delete(c.nodes, id)
	c.mu.Unlock()
}

// answer returns the response w is due (nil: none yet). A request is answered when its version is not the snapshot's or
// nothing of this version was sent to the node yet (a new stream, a new
// control plane: the proxy gets its config again and its status shows it
// synced), and a request naming resources (RDS, EDS) also when it names one
// not answered at this version. n's lock is held.
func (n *sotwNode) answer(w *sotwWatch) cache.Response {
	if n.snap == nil {
		return nil
	}
	t := w.req.GetTypeUrl()
	wt, ok := n.snap[t]
	if !ok {
		return nil
	}
	names := w.req.GetResourceNames()
	last := n.sent[t]
	if w.req.GetVersionInfo() == wt.version && last.version == wt.version && (len(names) == 0 || subset(names, last.names)) {
		// The client holds all it asks for, and dropped what it no longer
		// lists: should it ask for that again, it must get it again.
		if len(names) > 0 {
			n.sent[t] = sentState{version: last.version, names: names}
		}
		return nil
	}
	resp := &discovery.DiscoveryResponse{VersionInfo: wt.version, TypeUrl: t}
	if len(names) == 0 {
		size := 0
		for _, p := range wt.parts {
			size += len(p.res)
		}
		resp.Resources = make([]*anypb.Any, 0, size)
		for _, p := range wt.parts {
			resp.Resources = append(resp.Resources, p.res...)
		}
	} else {
		resp.Resources = make([]*anypb.Any, 0, len(names))
		for _, name := range names {
			found := false
			for _, p := range wt.parts {
				if i, ok := p.index[name]; ok {
					resp.Resources = append(resp.Resources, p.res[i])
					found = true
					break
				}
			}
			if !found && wt.missing != nil {
				if r := wt.missing(name); r != nil {
					resp.Resources = append(resp.Resources, r)
				}
			}
		}
	}
	return &cache.PassthroughResponse{Request: w.req, DiscoveryResponse: resp}
}

// sent records a response as it goes on the wire (the server's
// OnStreamResponse): the version and the names of the request it answers.
// Only then, not when answer made it: go-control-plane's ordered ADS drops
// a response still queued when a new request of its type comes, and a
// node recorded as holding what it never got would wait forever.
func (c *sotwCache) sent(id, typeURL, version string, names []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n := c.nodes[id]; n != nil {
		n.sent[typeURL] = sentState{version: version, names: names}
	}
}

// subset reports whether every name of a is in b (both usually the same
// sorted list: the fast path).
func subset(a, b []string) bool {
	if len(a) <= len(b) {
		same := true
		for i := range a {
			if a[i] != b[i] {
				same = false
				break
			}
		}
		if same {
			return true
		}
	}
	set := make(map[string]bool, len(b))
	for _, x := range b {
		set[x] = true
	}
	for _, x := range a {
		if !set[x] {
			return false
		}
	}
	return true
}
