package config

import (
	"errors"
	"fmt"

	networking "istio.io/api/networking/v1alpha3"
	security "istio.io/api/security/v1beta1"
)

// Limits on one config object. They keep a single object from stalling the
// control plane (parsing, analysis and the xDS of every proxy that sees it
// grow with its size), and each is far above what real configs use.
const (
	// MaxObjectBytes is the largest YAML document of one object: the size
	// Kubernetes stores (etcd's default request limit, 1.5 MiB), so a
	// config weft accepts also fits a cluster.
	MaxObjectBytes = 1536 << 10
	// MaxRules is the most routing rules of one VirtualService (http, tls
	// and tcp together) and the most rules of one AuthorizationPolicy.
	MaxRules = 4096
)

// ErrTooLarge is wrapped by errors for objects over a limit above.
var ErrTooLarge = errors.New("config object over weft's limits")

// checkDocumentSize refuses a document over MaxObjectBytes before it is
// parsed, so its cost is only the read.
func checkDocumentSize(source string, doc document) error {
	if len(doc.data) <= MaxObjectBytes {
		return nil
	}
	return &Error{Source: source, Object: doc.label(), Err: ErrTooLarge,
		Reason: fmt.Sprintf("the document is %s; one object may be at most %s (the size Kubernetes stores): split it into several objects",
			sizeString(len(doc.data)), sizeString(MaxObjectBytes))}
}

// checkRuleCounts reports an object with more rules than MaxRules and
// whether it did, so validation skips the rules themselves (one error, not
// one per rule).
func (v *validator) checkRuleCounts(spec any) bool {
	var n int
	var what string
	switch s := spec.(type) {
	case *networking.VirtualService:
		n, what = len(s.GetHttp())+len(s.GetTls())+len(s.GetTcp()), "routing rules (http, tls and tcp)"
	case *security.AuthorizationPolicy:
		n, what = len(s.GetRules()), "rules"
	default:
		return false
	}
	if n <= MaxRules {
		return false
	}
	v.fe.addErr("spec", fmt.Sprintf("%d %s; one object may have at most %d: split it into several objects", n, what, MaxRules), ErrTooLarge)
	return true
}

// sizeString prints a byte count, with its size in MiB.
func sizeString(n int) string {
	return fmt.Sprintf("%d bytes (%.1f MiB)", n, float64(n)/(1<<20))
}
