package dataplane

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"testing"

	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// startEcho serves a TCP app that reads until EOF, then answers with what it
// read and closes: it needs half-close to work end to end.
func startEcho(t *testing.T, ip netip.Addr) netip.AddrPort {
	ln, err := net.Listen("tcp", netip.AddrPortFrom(ip, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				b, _ := io.ReadAll(c)
				fmt.Fprintf(c, "echo:%s", b)
			}()
		}
	}()
	return netip.MustParseAddrPort(ln.Addr().String())
}

func TestTCPProxyThroughTunnelHalfClose(t *testing.T) {
	clientIP, serverIP := randIP(), randIP()
	app := startEcho(t, serverIP)
	port := app.Port()
	client, server := newTestDataplane(t, ModeSidecar, clientIP), newTestDataplane(t, ModeSidecar, serverIP)

	inbound := fmt.Sprintf("inbound|%d||", port)
	apply(t, server, clusterType, append(specialClusters(), staticCluster(t, inbound, app, false))...)
	il := inboundListener(t, serverIP)
	fc := tcpChain(t, inbound)
	fc.FilterChainMatch = &listener.FilterChainMatch{DestinationPort: wrapperspb.UInt32(uint32(port))}
	il.FilterChains = append(il.FilterChains, fc)
	apply(t, server, listenerType, il)

	svc := fmt.Sprintf("outbound|%d||db.default.svc.cluster.local", port)
	apply(t, client, clusterType, append(specialClusters(), edsCluster(t, svc, false))...)
	apply(t, client, endpointType, cla(svc, true, app))
	tl := &listener.Listener{Name: fmt.Sprintf("0.0.0.0_%d", port), Address: sock("0.0.0.0", uint32(port)),
		BindToPort: wrapperspb.Bool(false), FilterChains: []*listener.FilterChain{tcpChain(t, svc)}}
	apply(t, client, listenerType, outboundListener(t, clientIP), tl)

	conn, err := net.Dial("tcp", netip.AddrPortFrom(clientIP, testOutbound).String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "CONNECT db:%d HTTP/1.1\r\nHost: db\r\n\r\n", port)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("CONNECT: %v %v", resp, err)
	}
	io.WriteString(conn, "hello over tcp")
	if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(br)
	if err != nil || string(got) != "echo:hello over tcp" {
		t.Fatalf("got %q %v", got, err)
	}
	for _, cs := range server.Clusters() {
		if cs.Name == inbound && cs.Endpoints[0].TotalRequests != 1 {
			t.Errorf("inbound tcp cluster: %+v, want 1 connection through the tunnel", cs)
		}
	}
}
