package dataplane

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"
)

// sourceGuard allows connections from one source address only.
type sourceGuard struct{ allow netip.Addr }

func (g sourceGuard) Check(_, remote netip.AddrPort) error {
	if remote.Addr() == g.allow {
		return nil
	}
	return errors.New("not the app")
}

func TestOutboundGuard(t *testing.T) {
	ip, appIP := randIP(), randIP()
	app := startApp(t, appIP, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "app ", r.URL.Path) }))
	allowed, refused := randIP(), randIP()
	d, err := New(Options{Mode: ModeSidecar, IP: ip, OutboundPort: testOutbound, InboundPort: testInbound,
		OutboundGuard: sourceGuard{allowed}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = d.Shutdown(ctx)
	})
	apply(t, d, clusterType, specialClusters()...)
	apply(t, d, listenerType, outboundListener(t, ip))
	capture := netip.AddrPortFrom(ip, testOutbound)

	for _, tc := range []struct {
		name    string
		src     netip.Addr
		want    string // the answer's body; "" for a connection closed unanswered
		refused uint64
	}{
		{"the workload's process", allowed, "app /hello", 0},
		{"another local process", refused, "", 1},
		{"the workload again", allowed, "app /hello", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dialer := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(tc.src, 0)), Timeout: 5 * time.Second}
			c, err := dialer.Dial("tcp", capture.String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			fmt.Fprintf(c, "GET http://%s/hello HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", app, app)
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			got := ""
			if err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				got = string(b)
			}
			if got != tc.want {
				t.Errorf("answer %q (err %v), want %q", got, err, tc.want)
			}
			if n := d.RefusedOutbound(); n != tc.refused {
				t.Errorf("RefusedOutbound() = %d, want %d", n, tc.refused)
			}
		})
	}
}
