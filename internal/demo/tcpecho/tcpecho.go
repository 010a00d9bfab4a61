// Package tcpecho is Istio's tcp-echo sample server in Go: every line a
// client sends comes back with the server's prefix ("one hello").
package tcpecho

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
)

// Serve answers every connection accepted on ln until ctx ends, then
// closes ln and waits for the connections to end.
func Serve(ctx context.Context, ln net.Listener, prefix string) error {
	var wg sync.WaitGroup
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var conns sync.Map
	defer func() {
		conns.Range(func(k, _ any) bool { k.(net.Conn).Close(); return true })
		wg.Wait()
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("tcp-echo: accepting: %w", err)
		}
		conns.Store(c, nil)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer conns.Delete(c)
			defer c.Close()
			echo(c, prefix)
		}()
	}
}

func echo(c net.Conn, prefix string) {
	sc := bufio.NewScanner(c)
	w := bufio.NewWriter(c)
	for sc.Scan() {
		fmt.Fprintf(w, "%s %s\n", prefix, sc.Text())
		if w.Flush() != nil {
			return
		}
	}
}

// Run serves the prefix on every address in addrs until ctx ends.
func Run(ctx context.Context, addrs []string, prefix string) error {
	var lns []net.Listener
	for _, a := range addrs {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return fmt.Errorf("tcp-echo: %w", err)
		}
		lns = append(lns, ln)
	}
	errs := make(chan error, len(lns))
	for _, ln := range lns {
		go func() { errs <- Serve(ctx, ln, prefix) }()
	}
	var first error
	for range lns {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}
