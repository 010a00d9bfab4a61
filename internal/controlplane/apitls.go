package controlplane

import (
	"bufio"
	"crypto/tls"
	"net"
	"os"
	"sync"
	"time"

	"github.com/weft-mesh/weft/internal/controlplane/ca"
)

// sniffTimeout bounds how long a new API connection may take to send its
// first byte.
const sniffTimeout = 10 * time.Second

// tlsRecordHandshake is the first byte of a TLS client hello.
const tlsRecordHandshake = 0x16

// bothListener serves plaintext HTTP and HTTPS on one port: a connection
// whose first byte starts a TLS handshake is served over TLS (where an
// admin client certificate from the mesh CA authenticates its caller),
// any other as it is. Each connection is classified in its own goroutine,
// so a silent client does not hold up the others.
type bothListener struct {
	net.Listener
	tls   *tls.Config
	conns chan net.Conn
	errc  chan error
	done  chan struct{}
	once  sync.Once
}

// newBothListener serves lis with cfg for the connections that speak TLS.
func newBothListener(lis net.Listener, cfg *tls.Config) *bothListener {
	b := &bothListener{Listener: lis, tls: cfg, conns: make(chan net.Conn), errc: make(chan error, 1), done: make(chan struct{})}
	go b.acceptLoop()
	return b
}

func (b *bothListener) acceptLoop() {
	for {
		c, err := b.Listener.Accept()
		if err != nil {
			b.errc <- err
			return
		}
		go b.classify(c)
	}
}

func (b *bothListener) classify(c net.Conn) {
	_ = c.SetReadDeadline(time.Now().Add(sniffTimeout))
	r := bufio.NewReader(c)
	first, err := r.Peek(1)
	_ = c.SetReadDeadline(time.Time{})
	if err != nil {
		c.Close()
		return
	}
	var out net.Conn = &peekedConn{Conn: c, r: r}
	if first[0] == tlsRecordHandshake {
		out = tls.Server(out, b.tls)
	}
	select {
	case b.conns <- out:
	case <-b.done:
		out.Close()
	}
}

// Accept returns the next classified connection.
func (b *bothListener) Accept() (net.Conn, error) {
	select {
	case c := <-b.conns:
		return c, nil
	case err := <-b.errc:
		b.errc <- err // every later Accept fails the same way
		return nil, err
	case <-b.done:
		return nil, net.ErrClosed
	}
}

// Close stops accepting.
func (b *bothListener) Close() error {
	b.once.Do(func() { close(b.done) })
	return b.Listener.Close()
}

// peekedConn reads first what classify peeked.
type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (p *peekedConn) Read(b []byte) (int, error) { return p.r.Read(b) }

// apiTLS is the API's TLS config: a certificate from the mesh CA for the
// control plane's names and addresses, and admin client certificates
// verified against the mesh's roots when given.
func apiTLS(authority *ca.CA, lis net.Listener) *tls.Config {
	dns := append([]string(nil), ca.ServingDNSNames...)
	if h, err := os.Hostname(); err == nil && h != "" {
		dns = append(dns, h)
	}
	serving := authority.NewServingCert(ca.ControlPlaneIdentity, dns, listenerIPs(lis), ca.DefaultTTL, nil)
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: serving.GetCertificate,
		ClientAuth:     tls.VerifyClientCertIfGiven,
		ClientCAs:      authority.Roots(),
	}
}

// listenerIPs are the IPs a client may dial lis at: its own, or every
// interface's when it listens on all of them.
func listenerIPs(lis net.Listener) []net.IP {
	ips := []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	ta, ok := lis.Addr().(*net.TCPAddr)
	if !ok {
		return ips
	}
	if !ta.IP.IsUnspecified() {
		return append(ips, ta.IP)
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return ips
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() {
			ips = append(ips, n.IP)
		}
	}
	return ips
}
