// Package spiffe parses and prints the SPIFFE identities of mesh workloads,
// spiffe://TRUST_DOMAIN/ns/NAMESPACE/sa/SERVICE_ACCOUNT, as Istio issues
// them. Both the control plane's CA and the proxy's certificate client use it.
package spiffe

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// DefaultTrustDomain is the mesh's trust domain, as Istio's default.
const DefaultTrustDomain = "cluster.local"

// ID is a workload identity: spiffe://TrustDomain/ns/Namespace/sa/ServiceAccount.
type ID struct {
	TrustDomain    string
	Namespace      string
	ServiceAccount string
}

// New returns the identity of service account sa in namespace ns of the
// default trust domain.
func New(ns, sa string) ID {
	return ID{TrustDomain: DefaultTrustDomain, Namespace: ns, ServiceAccount: sa}
}

// String returns the identity's URI, spiffe://td/ns/NS/sa/SA.
func (id ID) String() string {
	return "spiffe://" + id.TrustDomain + "/ns/" + id.Namespace + "/sa/" + id.ServiceAccount
}

// URL returns the identity as a URL, for a certificate's URI SAN.
func (id ID) URL() *url.URL {
	return &url.URL{Scheme: "spiffe", Host: id.TrustDomain, Path: "/ns/" + id.Namespace + "/sa/" + id.ServiceAccount}
}

// IsZero reports whether id is the zero ID.
func (id ID) IsZero() bool { return id == ID{} }

// Validate reports whether every part of id is well formed.
func (id ID) Validate() error {
	if err := validTrustDomain(id.TrustDomain); err != nil {
		return err
	}
	if err := validSegment("namespace", id.Namespace); err != nil {
		return err
	}
	return validSegment("service account", id.ServiceAccount)
}

// Parse parses spiffe://td/ns/NS/sa/SA strictly: the scheme is spiffe, the
// trust domain is a lowercase DNS-like name without port or userinfo, the
// path is exactly /ns/NS/sa/SA with no empty, "." or ".." segment, and there
// is no query or fragment.
func Parse(s string) (ID, error) {
	bad := func(why string) (ID, error) { return ID{}, fmt.Errorf("SPIFFE ID %q: %s", s, why) }
	rest, ok := strings.CutPrefix(s, "spiffe://")
	if !ok {
		return bad("want spiffe://TRUST_DOMAIN/ns/NAMESPACE/sa/SERVICE_ACCOUNT")
	}
	if strings.ContainsAny(rest, "?#") {
		return bad("query and fragment are not allowed")
	}
	td, path, ok := strings.Cut(rest, "/")
	if !ok {
		return bad("missing path /ns/NAMESPACE/sa/SERVICE_ACCOUNT")
	}
	if strings.Contains(td, "@") {
		return bad("userinfo is not allowed")
	}
	if err := validTrustDomain(td); err != nil {
		return bad(err.Error())
	}
	parts := strings.Split(path, "/")
	if len(parts) != 4 || parts[0] != "ns" || parts[2] != "sa" {
		return bad("path must be exactly /ns/NAMESPACE/sa/SERVICE_ACCOUNT")
	}
	id := ID{TrustDomain: td, Namespace: parts[1], ServiceAccount: parts[3]}
	if err := validSegment("namespace", id.Namespace); err != nil {
		return bad(err.Error())
	}
	if err := validSegment("service account", id.ServiceAccount); err != nil {
		return bad(err.Error())
	}
	return id, nil
}

func validTrustDomain(td string) error {
	if td == "" {
		return errors.New("empty trust domain")
	}
	if len(td) > 255 {
		return errors.New("trust domain longer than 255 characters")
	}
	for _, c := range td {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '.', c == '-', c == '_':
		default:
			return fmt.Errorf("trust domain %q: only lowercase letters, digits, '.', '-' and '_' are allowed", td)
		}
	}
	return nil
}

// validSegment allows the SPIFFE path characters (letters, digits, '.', '-', '_').
func validSegment(what, seg string) error {
	if seg == "" {
		return fmt.Errorf("empty %s", what)
	}
	if seg == "." || seg == ".." {
		return fmt.Errorf("%s %q is not allowed", what, seg)
	}
	for _, c := range seg {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '-', c == '_':
		default:
			return fmt.Errorf("%s %q: only letters, digits, '.', '-' and '_' are allowed", what, seg)
		}
	}
	return nil
}

// FromCert returns the identity of a certificate: its one spiffe URI SAN.
// A certificate with none, or with several, has no identity.
func FromCert(cert *x509.Certificate) (ID, error) {
	if cert == nil {
		return ID{}, errors.New("no certificate")
	}
	return FromURIs(cert.URIs)
}

// FromURIs returns the identity among a certificate's or a CSR's URI SANs:
// there must be exactly one spiffe URI.
func FromURIs(uris []*url.URL) (ID, error) {
	var found []string
	for _, u := range uris {
		if u.Scheme == "spiffe" {
			found = append(found, u.String())
		}
	}
	switch len(found) {
	case 0:
		return ID{}, errors.New("no spiffe:// URI SAN")
	case 1:
		return Parse(found[0])
	default:
		return ID{}, fmt.Errorf("%d spiffe:// URI SANs (%s), want exactly one", len(found), strings.Join(found, ", "))
	}
}
