package e2e

import (
	"bytes"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// TestGatewayDrainSendsGOAWAY: as Envoy does on shutdown, the ingress
// gateway process tells its HTTP/2 clients to go away (GOAWAY) when it
// gets SIGTERM, instead of cutting their connections; the demo then
// restarts it and the page answers again.
func TestGatewayDrainSendsGOAWAY(t *testing.T) {
	m := startDemo(t)
	conn, err := net.Dial("tcp", m.b.ingress())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	io.WriteString(conn, http2.ClientPreface)
	fr := http2.NewFramer(conn, conn)
	fr.WriteSettings()
	var hdr bytes.Buffer
	enc := hpack.NewEncoder(&hdr)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":path", "/productpage"}, {":authority", "bookinfo"}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hdr.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	var status string
	dec := hpack.NewDecoder(4096, func(f hpack.HeaderField) {
		if f.Name == ":status" {
			status = f.Value
		}
	})
	// The first exchange over h2c, to its end.
	for done := false; !done; {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("h2c GET /productpage through the ingress: %v", err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				fr.WriteSettingsAck()
			}
		case *http2.HeadersFrame:
			dec.Write(f.HeaderBlockFragment())
			done = f.StreamEnded()
		case *http2.DataFrame:
			done = f.StreamEnded()
		}
	}
	if status != "200" {
		t.Fatalf("h2c GET /productpage through the ingress: status %q", status)
	}
	m.waitRunning()
	gw := demoChild(t, m, "gateway", "--ip")
	if err := syscall.Kill(gw, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("the gateway closed the h2 connection on SIGTERM without GOAWAY: %v", err)
		}
		if g, ok := f.(*http2.GoAwayFrame); ok {
			if g.ErrCode != http2.ErrCodeNo {
				t.Errorf("GOAWAY with %v, want NO_ERROR (a graceful drain)", g.ErrCode)
			}
			break
		}
	}
	m.waitPage(60 * time.Second) // restarted
}
