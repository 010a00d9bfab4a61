package admin

import (
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/weft-mesh/weft/internal/tap"
)

// tapHandler serves GET /tap?path=&method=&authority=&max=: the proxy's
// matching exchanges as they finish, one JSON object (tap.Event) a line.
// Only the control plane may tap: the request carries a tap token
// ("Authorization: Bearer", tap.Verify) signed with an admin certificate of
// the mesh CA, for this proxy. Filters run here.
func (s *Server) tapHandler(w http.ResponseWriter, r *http.Request) {
	if s.opts.Tap == nil {
		http.Error(w, "tap is off on this proxy", http.StatusNotFound)
		return
	}
	var roots *x509.CertPool
	if s.opts.TapRoots != nil {
		roots = s.opts.TapRoots()
	}
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if err := tap.Verify(tok, roots, s.opts.Node.GetId(), s.opts.Now()); err != nil {
		s.log.Warn("refused a tap", "remote", r.RemoteAddr, "err", err)
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	max := 0
	if v := r.URL.Query().Get("max"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			http.Error(w, fmt.Sprintf("max %q: want a number of requests", v), http.StatusBadRequest)
			return
		}
		max = n
	}
	events, dropped, stop := s.opts.Tap.Subscribe(tap.FilterFrom(r.URL.Query()))
	defer stop()
	s.log.Info("tap attached", "remote", r.RemoteAddr)
	w.Header().Set("Content-Type", "application/x-ndjson")
	rc := http.NewResponseController(w)
	w.WriteHeader(http.StatusOK)
	_ = rc.Flush()
	enc := json.NewEncoder(w)
	for n := 0; max == 0 || n < max; n++ {
		select {
		case <-r.Context().Done():
			s.log.Info("tap detached", "missed", dropped())
			return
		case e := <-events:
			if err := enc.Encode(&e); err != nil {
				return
			}
			if err := rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
				return
			}
		}
	}
}
