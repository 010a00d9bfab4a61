package xdsmeta

import (
	"slices"
	"strings"
)

// Protocol names as Istio spells them.
const (
	ProtocolHTTP      = "HTTP"
	ProtocolHTTP2     = "HTTP2"
	ProtocolHTTPS     = "HTTPS"
	ProtocolGRPC      = "GRPC"
	ProtocolGRPCWeb   = "GRPC-Web"
	ProtocolTCP       = "TCP"
	ProtocolTLS       = "TLS"
	ProtocolUDP       = "UDP"
	ProtocolMongo     = "Mongo"
	ProtocolRedis     = "Redis"
	ProtocolMySQL     = "MySQL"
	ProtocolHTTPProxy = "HTTP_PROXY"
	// ProtocolAuto is a port whose name and declaration select no
	// protocol: as Istio does, its proxies sniff HTTP/1.1 and HTTP/2 from
	// the first bytes of each connection and treat the rest as TCP. It is
	// weft's name, not one a user writes.
	ProtocolAuto = "AUTO"
)

var protocols = []string{
	ProtocolHTTP, ProtocolHTTP2, ProtocolHTTPS, ProtocolGRPC, ProtocolGRPCWeb, ProtocolTCP,
	ProtocolTLS, ProtocolUDP, ProtocolMongo, ProtocolRedis, ProtocolMySQL, ProtocolHTTPProxy,
}

// ParseProtocol returns the canonical Istio name of a protocol written in any
// case ("http", "grpc-web"), or false if Istio does not know it.
func ParseProtocol(s string) (string, bool) {
	for _, p := range protocols {
		if strings.EqualFold(s, p) {
			return p, true
		}
	}
	return "", false
}

// IsHTTPProtocol reports whether p (canonical) carries HTTP: HTTP, HTTP2,
// GRPC or GRPC-Web.
func IsHTTPProtocol(p string) bool {
	switch p {
	case ProtocolHTTP, ProtocolHTTP2, ProtocolGRPC, ProtocolGRPCWeb:
		return true
	}
	return false
}

// ProtocolFromPortName selects a port's protocol from its name as Istio
// does: "<protocol>" or "<protocol>-<suffix>" ("http", "http-web",
// "grpc-web", "tcp-db"), any case. Names that select nothing are
// ProtocolAuto: the protocol is detected.
func ProtocolFromPortName(name string) string {
	if p, ok := ParseProtocol(name); ok && p != ProtocolHTTPProxy {
		return p
	}
	lower := strings.ToLower(name)
	if strings.HasPrefix(lower, "grpc-web-") {
		return ProtocolGRPCWeb
	}
	if i := strings.IndexByte(name, '-'); i > 0 {
		if p, ok := ParseProtocol(name[:i]); ok && p != ProtocolHTTPProxy {
			return p
		}
	}
	return ProtocolAuto
}

// Protocols lists every protocol name Istio knows, canonical spelling.
func Protocols() []string { return slices.Clone(protocols) }
