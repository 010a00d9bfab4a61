package dataplane

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"net"
	"testing"
	"time"
)

// clientHello records what crypto/tls sends as its first flight.
func clientHello(t testing.TB, serverName string) []byte {
	a, b := net.Pipe()
	go func() {
		c := tls.Client(a, &tls.Config{ServerName: serverName, InsecureSkipVerify: serverName == ""})
		c.SetDeadline(time.Now().Add(time.Second))
		c.Handshake()
		a.Close()
	}()
	buf := make([]byte, 64<<10)
	b.SetReadDeadline(time.Now().Add(time.Second))
	n, _ := b.Read(buf)
	b.Close()
	return buf[:n]
}

func TestPeekSNI(t *testing.T) {
	for _, name := range []string{"www.google.com", "reviews.default.svc.cluster.local", ""} {
		hello := clientHello(t, name)
		br := bufio.NewReader(bytes.NewReader(hello))
		got, err := peekSNI(br)
		if err != nil || got != name {
			t.Errorf("SNI %q: got %q, %v", name, got, err)
		}
		if br.Buffered() == 0 {
			t.Error("peekSNI must not consume the hello")
		}
	}
	if _, err := peekSNI(bufio.NewReader(bytes.NewReader([]byte("GET / HTTP/1.1\r\n\r\n")))); err != errNotTLS {
		t.Errorf("plain HTTP: %v, want errNotTLS", err)
	}
}

func FuzzPeekSNI(f *testing.F) {
	f.Add(clientHello(f, "example.com"))
	f.Add([]byte{0x16, 3, 1, 0, 4, 1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		peekSNI(bufio.NewReader(bytes.NewReader(b)))
	})
}
