package proxy

import (
	"context"
	"net"
	"time"

	"github.com/weft-mesh/weft/internal/proxy/localpeer"
)

// Who may use the outbound capture port, and the app's own network
// namespace (docs/security.md, "Capture ports").

// outboundGuard is who may send through the outbound capture port: with
// Capture the pod's network namespace is the workload's alone, so any
// local source; else the processes and users the options name.
func (o Options) outboundGuard() *localpeer.Guard {
	g := &localpeer.Guard{Netns: o.Capture || o.PodNetns, PodIP: o.IP, UIDs: o.OutboundAllowUIDs, Any: o.OutboundAllowAny}
	for _, pid := range o.OutboundAllowPIDs {
		g.AddProcess(pid)
	}
	return g
}

// ExpectProcess says AllowProcess is about to be called: until it is, the
// outbound capture port holds new connections a few seconds instead of
// refusing them (weft run's app may connect before its PID is known).
func (p *Proxy) ExpectProcess() {
	if p.guard != nil {
		p.guard.Expect()
	}
}

// appDial reaches the app for its metrics: in its network namespace when
// it has one, else nil (a plain dial).
func (p *Proxy) appDial() func(ctx context.Context, network, addr string) (net.Conn, error) {
	if p.netns == nil {
		return nil
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		return p.netns.Dial(ctx, &net.Dialer{Timeout: 5 * time.Second}, network, addr)
	}
}

// StartInPod runs start (exec.Cmd.Start of the app) so that the process
// starts in the app's network namespace when it has one (PodNetns).
func (p *Proxy) StartInPod(start func() error) error {
	if p.netns == nil {
		return start()
	}
	return p.netns.Do(start)
}

// AllowProcess lets process pid and its descendants send through the
// outbound capture port: weft run calls it with the app it starts.
func (p *Proxy) AllowProcess(pid int) {
	if p.guard != nil {
		p.guard.AddProcess(pid)
	}
}

// RefusedOutbound returns how many connections to the outbound capture
// port were refused as not the workload's own.
func (p *Proxy) RefusedOutbound() uint64 { return p.dp.RefusedOutbound() }
