// Command multiproto is an app for the protocol sniffing test: on
// $POD_IP:$PORT it serves HTTP/1.1 and h2c (answering "http PROTO
// x-sniffed=VALUE"), TLS with a self-signed certificate (echoing lines as
// "tls:SNI:LINE") and anything else as a line echo ("tcp:LINE"), telling
// them apart by their first bytes as the app of a port with no declared
// protocol might.
package main

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"time"
)

func main() {
	addr := net.JoinHostPort(os.Getenv("POD_IP"), os.Getenv("PORT"))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Fatalf("multiproto: %v", err)
	}
	cert, err := selfSigned()
	if err != nil {
		log.Fatalf("multiproto: %v", err)
	}
	httpConns := newChanListener(ln.Addr())
	p := new(http.Protocols)
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	srv := &http.Server{Protocols: p, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "http %s x-sniffed=%s", r.Proto, r.Header.Get("X-Sniffed"))
	})}
	go srv.Serve(httpConns)
	for {
		c, err := ln.Accept()
		if err != nil {
			log.Fatalf("multiproto: %v", err)
		}
		go func() {
			br := bufio.NewReader(c)
			c.SetReadDeadline(time.Now().Add(30 * time.Second))
			first, err := br.Peek(1)
			c.SetReadDeadline(time.Time{})
			if err != nil {
				c.Close()
				return
			}
			conn := &bufConn{Conn: c, r: br}
			switch {
			case first[0] == 0x16:
				tc := tls.Server(conn, &tls.Config{Certificates: []tls.Certificate{cert}})
				if err := tc.Handshake(); err != nil {
					c.Close()
					return
				}
				echo(tc, bufio.NewReader(tc), "tls:"+tc.ConnectionState().ServerName+":")
			case first[0] >= 'A' && first[0] <= 'Z':
				httpConns.ch <- conn
			default:
				echo(c, br, "tcp:")
			}
		}()
	}
}

// echo answers each line with prefix and the line, until EOF.
func echo(c net.Conn, br *bufio.Reader, prefix string) {
	defer c.Close()
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		if _, err := fmt.Fprint(c, prefix+line); err != nil {
			return
		}
	}
}

// bufConn is a connection whose reads go through r (bytes peeked).
type bufConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// chanListener hands connections to an http.Server.
type chanListener struct {
	addr net.Addr
	ch   chan net.Conn
}

func newChanListener(a net.Addr) *chanListener {
	return &chanListener{addr: a, ch: make(chan net.Conn)}
}

func (l *chanListener) Accept() (net.Conn, error) { return <-l.ch, nil }
func (l *chanListener) Close() error              { return nil }
func (l *chanListener) Addr() net.Addr            { return l.addr }

func selfSigned() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "multiproto"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"sniff.example"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}
