package dataplane

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
)

// Envoy's ring hash and Maglev sizes.
const (
	defaultMinRingSize = 1024
	maxRingSize        = 8 << 20
	defaultMaglevSize  = 65537
)

// hasher is a consistent-hash balancer: pickHash maps a request's hash to
// an endpoint, the same for every proxy with the same endpoints.
type hasher interface {
	picker
	pickHash(eps []*rendpoint, h uint64) *rendpoint
}

func hash64(s string) uint64 {
	f := fnv.New64a()
	f.Write([]byte(s))
	return mix(f.Sum64())
}

// mix spreads FNV's bits (splitmix64's finalizer).
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// ringHash is Envoy's ketama-style ring: each endpoint owns points on a
// 64-bit ring in proportion to its weight; a hash goes to the next point.
type ringHash struct {
	points []ringPoint
}

type ringPoint struct {
	hash uint64
	ep   int
}

func newRingHash(eps []*rendpoint, minSize uint64) *ringHash {
	r := &ringHash{}
	if len(eps) == 0 {
		return r
	}
	total := 0
	for _, e := range eps {
		total += max(e.weight, 1)
	}
	size := max(minSize, uint64(total))
	size = min(size, maxRingSize)
	for i, e := range eps {
		n := int(size) * max(e.weight, 1) / total
		for j := range max(n, 1) {
			r.points = append(r.points, ringPoint{hash64(e.addr + "_" + strconv.Itoa(j)), i})
		}
	}
	sort.Slice(r.points, func(a, b int) bool { return r.points[a].hash < r.points[b].hash })
	return r
}

func (r *ringHash) pick(eps []*rendpoint) *rendpoint { return r.pickHash(eps, rand.Uint64()) }

func (r *ringHash) pickHash(eps []*rendpoint, h uint64) *rendpoint {
	if len(r.points) == 0 {
		return nil
	}
	i := sort.Search(len(r.points), func(i int) bool { return r.points[i].hash >= h })
	if i == len(r.points) {
		i = 0
	}
	return eps[r.points[i].ep]
}

// maglev is Google's Maglev table: each endpoint fills slots in its own
// permutation order, so the table is balanced and changes little when an
// endpoint comes or goes.
type maglev struct {
	table []int
}

func newMaglev(eps []*rendpoint, size uint64) *maglev {
	m := &maglev{}
	if len(eps) == 0 {
		return m
	}
	n := int(size)
	offsets, skips, next := make([]uint64, len(eps)), make([]uint64, len(eps)), make([]uint64, len(eps))
	for i, e := range eps {
		offsets[i] = hash64(e.addr) % uint64(n)
		skips[i] = hash64(e.addr+"#skip")%uint64(n-1) + 1
	}
	m.table = slices.Repeat([]int{-1}, n)
	filled := 0
	for filled < n {
		for i := range eps {
			for range max(eps[i].weight, 1) {
				for {
					c := (offsets[i] + next[i]*skips[i]) % uint64(n)
					next[i]++
					if m.table[c] < 0 {
						m.table[c] = i
						filled++
						break
					}
				}
				if filled == n {
					return m
				}
			}
		}
	}
	return m
}

func (m *maglev) pick(eps []*rendpoint) *rendpoint { return m.pickHash(eps, rand.Uint64()) }

func (m *maglev) pickHash(eps []*rendpoint, h uint64) *rendpoint {
	if len(m.table) == 0 {
		return nil
	}
	return eps[m.table[h%uint64(len(m.table))]]
}

func compileHashLB(out *rcluster, c *cluster.Cluster) error {
	switch c.GetLbPolicy() {
	case cluster.Cluster_RING_HASH:
		size := uint64(defaultMinRingSize)
		if cfg := c.GetRingHashLbConfig(); cfg != nil {
			if cfg.GetHashFunction() != cluster.Cluster_RingHashLbConfig_XX_HASH {
				return fmt.Errorf("ring_hash_lb_config.hash_function: only XX_HASH is supported")
			}
			if v := cfg.GetMinimumRingSize(); v != nil {
				size = v.GetValue()
			}
		}
		out.lbName, out.lb = "RING_HASH", newRingHash(out.endpoints, size)
	case cluster.Cluster_MAGLEV:
		size := uint64(defaultMaglevSize)
		if v := c.GetMaglevLbConfig().GetTableSize(); v != nil {
			size = v.GetValue()
		}
		if size < 2 {
			return fmt.Errorf("maglev_lb_config.table_size must be at least 2")
		}
		out.lbName, out.lb = "MAGLEV", newMaglev(out.endpoints, size)
	}
	return nil
}

// rhash is a route's compiled hash policy.
type rhash struct {
	header, cookie, query string
	canon                 string // the header's canonical form
	sourceIP              bool
	cookiePath            string
	cookieTTL             time.Duration
}

func compileHashPolicy(ra *route.RouteAction) (*rhash, error) {
	hps := ra.GetHashPolicy()
	if len(hps) == 0 {
		return nil, nil
	}
	if len(hps) > 1 {
		return nil, fmt.Errorf("hash_policy: only one policy per route is supported")
	}
	hp := hps[0]
	if hp.GetTerminal() {
		return nil, fmt.Errorf("hash_policy.terminal is not supported")
	}
	out := &rhash{}
	switch p := hp.GetPolicySpecifier().(type) {
	case *route.RouteAction_HashPolicy_Header_:
		if p.Header.GetRegexRewrite() != nil {
			return nil, fmt.Errorf("hash_policy.header.regex_rewrite is not supported")
		}
		out.header = strings.ToLower(p.Header.GetHeaderName())
		out.canon = http.CanonicalHeaderKey(out.header)
	case *route.RouteAction_HashPolicy_Cookie_:
		out.cookie, out.cookiePath = p.Cookie.GetName(), p.Cookie.GetPath()
		if p.Cookie.GetTtl() != nil {
			out.cookieTTL = p.Cookie.GetTtl().AsDuration()
		}
	case *route.RouteAction_HashPolicy_ConnectionProperties_:
		out.sourceIP = p.ConnectionProperties.GetSourceIp()
	case *route.RouteAction_HashPolicy_QueryParameter_:
		out.query = p.QueryParameter.GetName()
	default:
		return nil, fmt.Errorf("hash_policy %T is not supported", p)
	}
	return out, nil
}

// hashRequest computes a request's hash. ok is false when the request has
// nothing to hash (the balancer then picks at random); setCookie, when
// not empty, is a Set-Cookie to send back (a generated cookie with a TTL).
func (h *rhash) hashRequest(r request, remote string) (v uint64, ok bool, setCookie string) {
	switch {
	case h.header != "":
		if s, found := r.header(h.header, h.canon); found {
			return hash64(s), true, ""
		}
	case h.cookie != "":
		if s, found := r.header("cookie", "Cookie"); found {
			for _, c := range strings.Split(s, ";") {
				name, val, _ := strings.Cut(strings.TrimSpace(c), "=")
				if name == h.cookie {
					return hash64(val), true, ""
				}
			}
		}
		if h.cookieTTL > 0 {
			val := strconv.FormatUint(rand.Uint64(), 16)
			c := &http.Cookie{Name: h.cookie, Value: val, Path: h.cookiePath, MaxAge: int(h.cookieTTL.Seconds()), HttpOnly: true}
			return hash64(val), true, c.String()
		}
	case h.query != "":
		_, q, _ := strings.Cut(r.pathQuery(), "?")
		if vals, err := url.ParseQuery(q); err == nil {
			if s, found := vals[h.query]; found && len(s) > 0 {
				return hash64(s[0]), true, ""
			}
		}
	case h.sourceIP:
		if host, _, err := net.SplitHostPort(remote); err == nil {
			return hash64(host), true, ""
		}
	}
	return 0, false, ""
}

// pickFor picks an endpoint of cl for a request, by its hash when the route
// and the cluster's balancer hash.
func (cl *rcluster) pickFor(r *rroute, req request, remote string) (*rendpoint, string) {
	hs, ok := cl.lb.(hasher)
	if !ok || r.hash == nil {
		return cl.pick(), ""
	}
	v, found, setCookie := r.hash.hashRequest(req, remote)
	if !found {
		return cl.pick(), ""
	}
	ep := hs.pickHash(cl.endpoints, v)
	if ep != nil && cl.outlier != nil && ep.ejected(time.Now()) {
		ep = cl.pick()
	}
	return ep, setCookie
}
