package dataplane

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// OutboundGuard says whether a connection to the outbound capture port is
// the workload's own traffic: anything reaching that port is sent with the
// workload's identity and mesh certificate, so under Istio only the pod's
// processes can reach it. Check is called once per accepted connection,
// from many goroutines at once; nil means allowed, an error says why not.
// localpeer.Guard is the proxy's.
type OutboundGuard interface {
	Check(local, remote netip.AddrPort) error
}

var errNoTCPAddress = errors.New("not a TCP connection")

// refusalLogEvery bounds the log of refused connections: a local process
// retrying in a loop must not flood it.
const refusalLogEvery = 10 * time.Second

// refusals counts connections the outbound guard refused and rate-limits
// their log lines.
type refusals struct {
	total  atomic.Uint64
	mu     sync.Mutex
	last   time.Time
	unsaid uint64 // refused since the last log line
}

// allowOutbound asks the guard about a connection iptables did not
// redirect (those are the pod's by construction) and closes it if
// refused. Connections without TCP addresses are refused too.
func (d *Dataplane) allowOutbound(c net.Conn) bool {
	g := d.opts.OutboundGuard
	if g == nil {
		return true
	}
	local, lok := c.LocalAddr().(*net.TCPAddr)
	remote, rok := c.RemoteAddr().(*net.TCPAddr)
	if !lok || !rok {
		d.refuse(c, errNoTCPAddress)
		return false
	}
	if err := g.Check(local.AddrPort(), remote.AddrPort()); err != nil {
		d.refuse(c, err)
		return false
	}
	return true
}

func (d *Dataplane) refuse(c net.Conn, why error) {
	d.refused.total.Add(1)
	c.Close()
	r := &d.refused
	r.mu.Lock()
	r.unsaid++
	now := time.Now()
	if now.Sub(r.last) < refusalLogEvery {
		r.mu.Unlock()
		return
	}
	n := r.unsaid
	r.last, r.unsaid = now, 0
	r.mu.Unlock()
	d.log.Warn("outbound capture port: refused a connection that is not the workload's own (sent on with its identity, it would impersonate it)",
		"remote", c.RemoteAddr().String(), "reason", why, "refused_since_last_log", n, "refused_total", d.refused.total.Load())
}

// RefusedOutbound returns how many connections the outbound guard refused.
func (d *Dataplane) RefusedOutbound() uint64 { return d.refused.total.Load() }
