// Package dnsproxy is the sidecar's DNS proxy (Istio's, on port 15053):
// it answers A and AAAA queries for mesh hosts with the service VIPs from
// the proxy's xDS config, short names expanded with the pod's search
// domains, and forwards every other query to the upstream resolvers of
// /etc/resolv.conf.
package dnsproxy

import (
	"errors"
	"net/netip"
	"strings"

	"golang.org/x/net/dns/dnsmessage"
)

// TTL is the time to live of local answers, in seconds (Istio's 30 s).
const TTL = 30

// Hosts returns the mesh's host names (lower case, no trailing dot) with
// their VIPs. The map it returns must not be modified; it is called for
// every query, from many goroutines.
type Hosts func() map[string][]netip.Addr

// Resolver answers queries from the mesh's hosts. Its zero value answers
// nothing locally.
type Resolver struct {
	Hosts Hosts
	// Search are the pod's search domains (resolv.conf), tried in order
	// after the name itself: "reviews" is reviews.default.svc.cluster.local
	// with search default.svc.cluster.local.
	Search []string
}

// lookup returns the VIPs of a queried name and whether it is a mesh host.
func (r *Resolver) lookup(name string) ([]netip.Addr, bool) {
	if r.Hosts == nil {
		return nil, false
	}
	hosts := r.Hosts()
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	if addrs, ok := hosts[name]; ok {
		return addrs, true
	}
	for _, s := range r.Search {
		if addrs, ok := hosts[name+"."+strings.Trim(s, ".")]; ok {
			return addrs, true
		}
	}
	return nil, false
}

// errNotLocal means the query is not for a mesh host: forward it.
var errNotLocal = errors.New("not a mesh host")

// errMalformed means the query cannot be parsed: it is dropped.
var errMalformed = errors.New("malformed DNS query")

// Answer builds the response to a query when it asks for A or AAAA of a
// mesh host (one question, class IN). It returns errNotLocal for queries
// to forward and errMalformed for ones that cannot be answered at all.
func (r *Resolver) Answer(query []byte) ([]byte, error) {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		return nil, errMalformed
	}
	if h.Response {
		return nil, errMalformed
	}
	qs, err := p.AllQuestions()
	if err != nil {
		return nil, errMalformed
	}
	if h.OpCode != 0 || len(qs) != 1 || qs[0].Class != dnsmessage.ClassINET ||
		(qs[0].Type != dnsmessage.TypeA && qs[0].Type != dnsmessage.TypeAAAA) {
		return nil, errNotLocal
	}
	q := qs[0]
	addrs, ok := r.lookup(q.Name.String())
	if !ok {
		return nil, errNotLocal
	}
	b := dnsmessage.NewBuilder(make([]byte, 0, 512), dnsmessage.Header{
		ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired, RecursionAvailable: true,
	})
	b.EnableCompression()
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if err := b.Question(q); err != nil {
		return nil, err
	}
	if err := b.StartAnswers(); err != nil {
		return nil, err
	}
	rh := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: TTL}
	for _, a := range addrs {
		a = a.Unmap()
		switch {
		case q.Type == dnsmessage.TypeA && a.Is4():
			err = b.AResource(rh, dnsmessage.AResource{A: a.As4()})
		case q.Type == dnsmessage.TypeAAAA && a.Is6():
			err = b.AAAAResource(rh, dnsmessage.AAAAResource{AAAA: a.As16()})
		}
		if err != nil {
			return nil, err
		}
	}
	// A host with no address of the family asked gets NOERROR with no
	// answers (NODATA), so resolvers use the other family.
	return b.Finish()
}

// failure builds a response with rcode (SERVFAIL, FORMERR) for a query
// whose header could be read; nil when not even that.
func failure(query []byte, rcode dnsmessage.RCode) []byte {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil || h.Response {
		return nil
	}
	resp := dnsmessage.Message{Header: dnsmessage.Header{ID: h.ID, Response: true, OpCode: h.OpCode,
		RecursionDesired: h.RecursionDesired, RecursionAvailable: true, RCode: rcode}}
	if q, err := p.Question(); err == nil {
		resp.Questions = []dnsmessage.Question{q}
	}
	out, err := resp.Pack()
	if err != nil {
		return nil
	}
	return out
}
