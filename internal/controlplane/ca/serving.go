package ca

import (
	"crypto/tls"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/weft-mesh/weft/internal/spiffe"
)

// ServingCert is a TLS server certificate the CA issues to the control
// plane itself (IssueServing), renewed at half-life on the next handshake.
// Its methods are safe for concurrent use.
type ServingCert struct {
	ca       *CA
	identity spiffe.ID
	dns      []string
	ips      []net.IP
	ttl      time.Duration
	log      *slog.Logger

	mu      sync.Mutex
	cert    *tls.Certificate
	renewAt time.Time
}

// NewServingCert returns a serving certificate for identity with the given
// SANs and validity (renewed at half of it); nothing is issued until the
// first GetCertificate. log names what the certificate is for in its
// warnings; nil discards them.
func (c *CA) NewServingCert(identity spiffe.ID, dns []string, ips []net.IP, ttl time.Duration, log *slog.Logger) *ServingCert {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &ServingCert{ca: c, identity: identity, dns: dns, ips: ips, ttl: ttl, log: log}
}

// GetCertificate returns the current certificate, issuing a new one when
// none was issued yet or half its validity has passed; if renewing fails it
// keeps serving the current one until it expires. It fits
// tls.Config.GetCertificate.
func (s *ServingCert) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cert != nil && time.Now().Before(s.renewAt) {
		return s.cert, nil
	}
	c, err := s.ca.IssueServing(s.identity, s.dns, s.ips, s.ttl)
	if err != nil {
		if s.cert != nil && time.Now().Before(s.cert.Leaf.NotAfter) {
			s.log.Warn("renewing the serving certificate failed; keeping the current one", "dns", s.dns, "error", err)
			return s.cert, nil
		}
		return nil, err
	}
	s.cert = c
	s.renewAt = c.Leaf.NotBefore.Add(c.Leaf.NotAfter.Sub(c.Leaf.NotBefore) / 2)
	return c, nil
}
