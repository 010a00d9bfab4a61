package admin

import (
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
)

// registerPprof adds Go's profiles under /debug/pprof/ (CPU, heap,
// goroutines, mutex, block, execution trace), the way Envoy's admin
// offers /cpuprofiler and /heapprofiler. They answer only loopback
// clients: a profile shows the proxy's insides, and the admin port is
// meant for the pod's own operator, as Envoy's is.
func registerPprof(mux *http.ServeMux) {
	mux.Handle("GET /debug/pprof/", loopbackOnly(http.HandlerFunc(pprof.Index)))
	mux.Handle("GET /debug/pprof/cmdline", loopbackOnly(http.HandlerFunc(pprof.Cmdline)))
	mux.Handle("GET /debug/pprof/profile", loopbackOnly(http.HandlerFunc(pprof.Profile)))
	mux.Handle("GET /debug/pprof/symbol", loopbackOnly(http.HandlerFunc(pprof.Symbol)))
	mux.Handle("GET /debug/pprof/trace", loopbackOnly(http.HandlerFunc(pprof.Trace)))
}

// loopbackOnly answers 403 to a client whose address is not loopback.
func loopbackOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !isLoopback(r.RemoteAddr) {
			http.Error(w, "profiles are served to loopback clients only", http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// isLoopback reports whether a host:port names a loopback address.
func isLoopback(hostPort string) bool {
	host, _, err := net.SplitHostPort(hostPort)
	if err != nil {
		return false
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}
