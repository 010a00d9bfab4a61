package dataplane

import (
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/weft-mesh/weft/internal/proxy/http1"
)

// bridge carries HTTP/1.1 requests to h2c upstreams: the http1 engine dials
// an in-memory pipe whose other end an HTTP/1.1 net/http server reads, and
// that server forwards each request over h2c.
type bridge struct {
	ln  *chanListener
	srv *http.Server
}

// bridgeConn is the server end of a bridge pipe, with its endpoint.
type bridgeConn struct {
	net.Conn
	ep *rendpoint
}

type bridgeKey struct{}

func newBridge(d *Dataplane) *bridge {
	b := &bridge{ln: newChanListener(&net.TCPAddr{})}
	b.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ep, _ := r.Context().Value(bridgeKey{}).(*rendpoint)
			if ep == nil {
				d.fwd.direct(w, r, http.StatusServiceUnavailable, "UH", "no healthy upstream")
				return
			}
			d.fwd.forwardTo(w, r, ep, true, 0, nil, nil, nil) // the HTTP/1.1 side bounds the exchange and edits headers
		}),
		ConnContext: connContext,
		ErrorLog:    slog.NewLogLogger(d.log.Handler(), slog.LevelDebug),
	}
	go b.srv.Serve(b.ln)
	return b
}

// dial returns the client end of a new pipe to the bridge for ep.
func (b *bridge) dial(ep *rendpoint) net.Conn {
	client, server := net.Pipe()
	if !b.ln.push(&bridgeConn{Conn: server, ep: ep}) {
		client.Close()
	}
	return client
}

// inject applies a fault: it waits out the delay on this connection's own
// goroutine and, for an abort, returns the response to send instead.
func (c *h1conn) inject(a faultAction) (http1.Decision, bool) {
	if a.delay > 0 {
		t := time.NewTimer(a.delay)
		select {
		case <-t.C:
		case <-c.ctx.Done():
			t.Stop()
		}
	}
	if !a.abort {
		return http1.Decision{}, false
	}
	if a.grpcStatus >= 0 {
		return http1.Decision{Status: http.StatusOK, Flags: "FI", Done: c.doneDirect, Header: http1.Header{
			{Name: "content-type", Value: "application/grpc"}, {Name: "grpc-status", Value: strconv.Itoa(a.grpcStatus)},
			{Name: "grpc-message", Value: faultAbortBody}, {Name: "x-weft-response-flags", Value: "FI"}}}, true
	}
	d := c.direct(a.status, "FI", faultAbortBody)
	return d, true
}
