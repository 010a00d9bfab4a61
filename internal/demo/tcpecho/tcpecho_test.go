package tcpecho

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"testing"
)

func TestEcho(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- Serve(ctx, ln, "one") }()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	for _, msg := range []string{"hello", "world"} {
		fmt.Fprintln(c, msg)
		line, err := br.ReadString('\n')
		if err != nil || line != "one "+msg+"\n" {
			t.Fatalf("got %q, %v", line, err)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	c.Close()
}
