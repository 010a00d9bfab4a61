package xdsserver

import (
	"sort"
	"time"

	"github.com/weft-mesh/weft/internal/config"
)

// Sync states of one xDS type for one proxy, as istioctl proxy-status shows them.
const (
	StatusSynced  = "SYNCED"   // the proxy ACKed the last version sent
	StatusStale   = "STALE"    // sent but not ACKed yet, or NACKed
	StatusNotSent = "NOT SENT" // subscribed, but nothing of this type sent yet
	StatusIgnored = "IGNORED"  // the proxy never subscribed to this type
)

// ProxyStatus is the identity and sync status of one connected proxy, as
// its xDS node and the server's bookkeeping tell them.
type ProxyStatus struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// Workload is the workload the proxy is an instance of (its node's
	// WORKLOAD_NAME, else its name), as metrics name it.
	Workload       string            `json:"workload"`
	Namespace      string            `json:"namespace"`
	Type           string            `json:"type"`
	IP             string            `json:"ip"`
	AdminAddress   string            `json:"adminAddress,omitempty"`
	Version        string            `json:"version,omitempty"`
	Labels         map[string]string `json:"labels,omitempty"`
	ServiceAccount string            `json:"serviceAccount,omitempty"`
	Service        *ServiceInfo      `json:"service,omitempty"` // WEFT_SERVICE, if announced
	ConnectedSince time.Time         `json:"connectedSince"`
	Streams        int               `json:"streams"`
	// Plaintext: connected on plaintext xDS, with no identity (read-only).
	Plaintext bool                  `json:"plaintext,omitempty"`
	Types     map[string]TypeStatus `json:"types"`
}

// TypeStatus is the sync status of one xDS type URL for one proxy.
type TypeStatus struct {
	// Subscribed says whether the proxy asked for this type.
	Subscribed bool `json:"subscribed"`
	// Sent is the version of the last response sent, Nonce its nonce.
	Sent  string `json:"sent,omitempty"`
	Nonce string `json:"nonce,omitempty"`
	// Acked is the last version the proxy ACKed.
	Acked string `json:"acked,omitempty"`
	// Nacked is the error detail of the proxy's NACK of the last response, if any.
	Nacked string `json:"nacked,omitempty"`
	// Status is StatusSynced, StatusStale, StatusNotSent or StatusIgnored.
	Status string `json:"status"`
}

// proxyState is the server's bookkeeping for one node ID.
type proxyState struct {
	// key is its key in Server.proxies and the caches: the node ID, or
	// plaintextKey for a plaintext stream's.
	key string
	// plaintext: connected on plaintext xDS, without an identity.
	plaintext bool
	info      *proxyInfo
	since     time.Time
	streams   int
	types     map[string]*TypeStatus
	workload  *config.Key // the auto-registered WorkloadEntry, if any
	build     *proxyBuild
	delta     bool // it opened a delta stream: the delta cache serves it
}

func (p *proxyState) typeStatus(typeURL string) *TypeStatus {
	ts, ok := p.types[typeURL]
	if !ok {
		ts = &TypeStatus{}
		p.types[typeURL] = ts
	}
	return ts
}

// sent records a response sent to the proxy.
func (p *proxyState) sent(typeURL, version, nonce string) {
	ts := p.typeStatus(typeURL)
	ts.Sent, ts.Nonce = version, nonce
}

// acked records an ACK of nonce; it returns false when the nonce is not the
// last one sent (a late ACK of an older response).
func (p *proxyState) acked(typeURL, nonce string) bool {
	ts := p.typeStatus(typeURL)
	if nonce != ts.Nonce {
		return false
	}
	ts.Acked, ts.Nacked = ts.Sent, ""
	return true
}

// nacked records a NACK with its error detail.
func (p *proxyState) nacked(typeURL, nonce, detail string) {
	ts := p.typeStatus(typeURL)
	if nonce == ts.Nonce {
		ts.Nacked = detail
	}
}

// status returns a copy of the proxy's state for the API.
func (p *proxyState) status() ProxyStatus {
	st := ProxyStatus{
		ID: p.info.proxy.ID, Name: p.info.proxy.Name, Workload: p.info.workloadName(), Namespace: p.info.proxy.Namespace,
		Type: p.info.statusType(), IP: p.info.proxy.IP, AdminAddress: p.info.admin,
		Version: p.info.version, Labels: p.info.proxy.Labels,
		ServiceAccount: p.info.proxy.ServiceAccount, Service: p.info.service,
		ConnectedSince: p.since, Streams: p.streams, Plaintext: p.plaintext,
		Types: make(map[string]TypeStatus, len(TypeURLs)),
	}
	for _, t := range TypeURLs {
		st.Types[t] = TypeStatus{Status: StatusIgnored}
	}
	for t, ts := range p.types {
		c := *ts
		switch {
		case c.Nonce == "" && !c.Subscribed:
			c.Status = StatusIgnored
		case c.Nonce == "":
			c.Status = StatusNotSent
		case c.Acked == c.Sent && c.Nacked == "":
			c.Status = StatusSynced
		default:
			c.Status = StatusStale
		}
		st.Types[t] = c
	}
	return st
}

// Proxies returns the sync status of every connected proxy, sorted by
// namespace, name and ID.
func (s *Server) Proxies() []ProxyStatus {
	s.mu.Lock()
	out := make([]ProxyStatus, 0, len(s.proxies))
	for _, p := range s.proxies {
		out = append(out, p.status())
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		if a.ID != b.ID {
			return a.ID < b.ID
		}
		return !a.Plaintext && b.Plaintext // an authenticated proxy before an anonymous namesake
	})
	return out
}
