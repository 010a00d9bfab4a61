package dataplane

import (
	"net"
	"testing"
	"time"
)

// TestPipeIdleTimeout: a spliced pair is closed once neither side sends
// for the idle timeout, and kept while one side keeps talking.
func TestPipeIdleTimeout(t *testing.T) {
	pair := func() (client, a, b, server net.Conn) {
		client, a = net.Pipe()
		b, server = net.Pipe()
		return
	}
	t.Run("idle both ways", func(t *testing.T) {
		client, a, b, server := pair()
		defer client.Close()
		defer server.Close()
		done := make(chan struct{})
		go func() { pipe(a, b, 50*time.Millisecond); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("an idle splice stayed open")
		}
	})
	t.Run("one side talking", func(t *testing.T) {
		client, a, b, server := pair()
		defer client.Close()
		defer server.Close()
		done := make(chan struct{})
		go func() { pipe(a, b, time.Second); close(done) }()
		go func() {
			buf := make([]byte, 16)
			for {
				if _, err := server.Read(buf); err != nil {
					return
				}
			}
		}()
		// Client talks every 20 ms for 1.5 s, past the idle timeout.
		for range 75 {
			if _, err := client.Write([]byte("ping")); err != nil {
				t.Fatalf("the splice closed while the client was talking: %v", err)
			}
			time.Sleep(20 * time.Millisecond)
		}
		select {
		case <-done:
			t.Fatal("the splice ended while traffic flowed")
		default:
		}
		client.Close()
		server.Close()
		<-done
	})
}
