package config

import (
	"strings"

	"github.com/weft-mesh/weft/internal/xdsmeta"
)

// DomainSuffix is the mesh's DNS domain, as Istio's default.
const DomainSuffix = "cluster.local"

// ResolveHost expands a service short name the way Istio and Kubernetes DNS
// do, relative to namespace: "reviews" in "default" is
// "reviews.default.svc.cluster.local", "reviews.prod" is
// "reviews.prod.svc.cluster.local" and "reviews.prod.svc" is
// "reviews.prod.svc.cluster.local". Names of three or more labels, "*" and
// wildcards such as "*.example.com" are returned unchanged. A two-label name
// is always read as NAME.NAMESPACE (as the Kubernetes DNS search path tries
// first); callers matching external hosts such as "example.com" should also
// try the host as written.
func ResolveHost(host, namespace string) string {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "" || strings.Contains(host, "*") {
		return host
	}
	if namespace == "" {
		namespace = DefaultNamespace
	}
	switch n := strings.Count(host, "."); {
	case n == 0:
		return host + "." + namespace + ".svc." + DomainSuffix
	case n == 1:
		return host + ".svc." + DomainSuffix
	case n == 2 && strings.HasSuffix(host, ".svc"):
		return host + "." + DomainSuffix
	}
	return host
}

// Protocol names as Istio spells them (xdsmeta's, which the proxy shares).
const (
	ProtocolHTTP      = xdsmeta.ProtocolHTTP
	ProtocolHTTP2     = xdsmeta.ProtocolHTTP2
	ProtocolHTTPS     = xdsmeta.ProtocolHTTPS
	ProtocolGRPC      = xdsmeta.ProtocolGRPC
	ProtocolGRPCWeb   = xdsmeta.ProtocolGRPCWeb
	ProtocolTCP       = xdsmeta.ProtocolTCP
	ProtocolTLS       = xdsmeta.ProtocolTLS
	ProtocolUDP       = xdsmeta.ProtocolUDP
	ProtocolMongo     = xdsmeta.ProtocolMongo
	ProtocolRedis     = xdsmeta.ProtocolRedis
	ProtocolMySQL     = xdsmeta.ProtocolMySQL
	ProtocolHTTPProxy = xdsmeta.ProtocolHTTPProxy
	ProtocolAuto      = xdsmeta.ProtocolAuto
)

var protocols = xdsmeta.Protocols()

// ParseProtocol returns the canonical Istio name of a protocol written in any
// case ("http", "grpc-web"), or false if Istio does not know it.
func ParseProtocol(s string) (string, bool) { return xdsmeta.ParseProtocol(s) }

// IsHTTPProtocol reports whether p (canonical) carries HTTP: HTTP, HTTP2,
// GRPC or GRPC-Web.
func IsHTTPProtocol(p string) bool { return xdsmeta.IsHTTPProtocol(p) }

// ProtocolFromPortName selects a port's protocol from its name as Istio
// does (see xdsmeta.ProtocolFromPortName).
func ProtocolFromPortName(name string) string { return xdsmeta.ProtocolFromPortName(name) }
