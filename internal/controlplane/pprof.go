package controlplane

import (
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
)

// pprofPrefix is where the Go runtime's profiles are served.
const pprofPrefix = "/debug/pprof/"

// mountPprof serves the Go runtime's profiles (net/http/pprof) under
// /debug/pprof/ beside next, to clients on a loopback address only: heap
// and CPU profiles of the control plane, for the scale bench and for
// debugging, never to the network even when the API listens on it.
func mountPprof(next http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(pprofPrefix, pprof.Index)
	mux.HandleFunc(pprofPrefix+"cmdline", pprof.Cmdline)
	mux.HandleFunc(pprofPrefix+"profile", pprof.Profile)
	mux.HandleFunc(pprofPrefix+"symbol", pprof.Symbol)
	mux.HandleFunc(pprofPrefix+"trace", pprof.Trace)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, pprofPrefix) {
			next.ServeHTTP(w, r)
			return
		}
		if !fromLoopback(r) {
			http.Error(w, "profiles are served to loopback clients only", http.StatusForbidden)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

func fromLoopback(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
