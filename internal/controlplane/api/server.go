package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/weft-mesh/weft/internal/config"
	"github.com/weft-mesh/weft/internal/controlplane/authz"
	"github.com/weft-mesh/weft/internal/controlplane/registry"
	"github.com/weft-mesh/weft/internal/controlplane/store"
	"github.com/weft-mesh/weft/internal/controlplane/xdsserver"
)

// maxBody bounds a request body.
const maxBody = 16 << 20

// Options configures the API handler.
type Options struct {
	// Store is the config store objects are applied to and read from.
	Store store.Store
	// Proxies reports the connected proxies' sync status (xdsserver.Server.Proxies).
	Proxies func() []xdsserver.ProxyStatus
	// Logger receives the API's logs; nil discards them.
	Logger *slog.Logger
	// Services, if set, returns the platform's services (Kubernetes) that
	// analysis knows besides those the config defines.
	Services func() *registry.Registry
	// Authorizer decides who may apply and delete config; nil: nobody may.
	Authorizer *authz.Authorizer
}

type handler struct {
	opts Options
	log  *slog.Logger
}

// NewHandler returns the API's http.Handler.
func NewHandler(opts Options) http.Handler {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Authorizer == nil {
		opts.Authorizer = authz.New(authz.Options{})
	}
	h := &handler{opts: opts, log: opts.Logger.With("component", "api")}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+ConfigPath, h.apply)
	mux.HandleFunc("DELETE "+ConfigPath, h.delete)
	mux.HandleFunc("GET "+ConfigPath, h.get)
	mux.HandleFunc("GET "+ProxiesPath, h.proxies)
	mux.HandleFunc("GET "+AnalyzePath, h.analyzeLive)
	mux.HandleFunc("GET "+HistoryPath, h.history)
	mux.HandleFunc("GET "+HistoryPath+"/{rev}", h.revision)
	mux.HandleFunc("GET "+DiffPath, h.diff)
	mux.HandleFunc("POST "+RollbackPath, h.rollback)
	return mux
}

// parseBody reads the YAML body; ?source= names the file in error messages.
// Kubernetes documents (Deployments, Services) mixed in are skipped, as
// weft runs no Kubernetes workloads.
func (h *handler) parseBody(w http.ResponseWriter, r *http.Request) ([]*config.Object, bool) {
	if !h.authenticated(w, r) {
		return nil, false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("reading the request body: %w", err))
		return nil, false
	}
	source := r.URL.Query().Get("source")
	if source == "" {
		source = store.SourceAPI
	}
	objs, err := config.ParseWith(source, body, config.ParseOptions{SkipForeign: true, Context: r.Context()})
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return nil, false
	}
	if len(objs) == 0 {
		writeError(w, http.StatusBadRequest, fmt.Errorf("%s: no Istio config objects found", source))
		return nil, false
	}
	return objs, true
}

// authenticated answers 401 and reports false when r carries no valid
// credential: a write is refused before its body is read and parsed, so
// an anonymous caller cannot make the control plane parse 16 MB of YAML.
// Authorization, which needs the objects, comes after parsing.
func (h *handler) authenticated(w http.ResponseWriter, r *http.Request) bool {
	u, err := h.opts.Authorizer.UserOf(r)
	if err == nil && u == nil {
		verb := "apply"
		if r.Method == http.MethodDelete {
			verb = "delete"
		}
		err = h.opts.Authorizer.Authorize(r.Context(), nil, authz.Action{Verb: verb, Resource: "mesh config"})
	}
	if err != nil {
		authz.WriteError(w, err)
		return false
	}
	*r = *r.WithContext(authz.WithUser(r.Context(), u))
	return true
}

func (h *handler) apply(w http.ResponseWriter, r *http.Request) {
	objs, ok := h.parseBody(w, r)
	if !ok {
		return
	}
	before := make(map[config.Key]int64, len(objs)) // key -> version before; absent: new
	acts := make([]authz.Action, len(objs))
	for i, o := range objs {
		o.Source = store.SourceAPI
		verb := authz.VerbCreate
		if old, ok := h.opts.Store.Get(o.Key()); ok {
			before[o.Key()] = old.ResourceVersion
			verb = authz.VerbUpdate
		}
		acts[i] = authz.ConfigAction(verb, o.Kind, o.Namespace, o.Name)
	}
	if !h.opts.Authorizer.Check(w, r, acts...) {
		h.log.Info("refused to apply config", "remote", r.RemoteAddr)
		return
	}
	warnings, refused, err := h.analyzeApply(r.Context(), r.URL.Query().Get("source"), objs)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, err)
		return
	}
	if refused != nil {
		writeError(w, http.StatusUnprocessableEntity, refused)
		return
	}
	var stored []*config.Object
	if hs, ok := h.opts.Store.(Historian); ok {
		stored, err = hs.ApplyBy(h.actorName(r), objs)
	} else {
		stored, err = h.opts.Store.Apply(objs)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	resp := ChangeResponse{Results: make([]Result, 0, len(stored)), Warnings: warnings}
	for _, o := range stored {
		action := ActionConfigured
		if v, ok := before[o.Key()]; !ok {
			action = ActionCreated
		} else if v == o.ResourceVersion {
			action = ActionUnchanged
		}
		resp.Results = append(resp.Results, resultFor(o, action))
	}
	h.log.Info("applied config", "objects", len(stored), "remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, resp)
}

func (h *handler) delete(w http.ResponseWriter, r *http.Request) {
	objs, ok := h.parseBody(w, r)
	if !ok {
		return
	}
	keys := make([]config.Key, len(objs))
	byKey := make(map[config.Key]*config.Object, len(objs))
	acts := make([]authz.Action, len(objs))
	for i, o := range objs {
		keys[i] = o.Key()
		byKey[o.Key()] = o
		acts[i] = authz.ConfigAction(authz.VerbDelete, o.Kind, o.Namespace, o.Name)
	}
	if !h.opts.Authorizer.Check(w, r, acts...) {
		h.log.Info("refused to delete config", "remote", r.RemoteAddr)
		return
	}
	var deleted []config.Key
	var err error
	if hs, ok := h.opts.Store.(Historian); ok {
		deleted, err = hs.DeleteBy(h.actorName(r), keys)
	} else {
		deleted, err = h.opts.Store.Delete(keys)
	}
	resp := ChangeResponse{Results: make([]Result, 0, len(deleted))}
	for _, k := range deleted {
		resp.Results = append(resp.Results, resultFor(byKey[k], ActionDeleted))
	}
	status := http.StatusOK
	switch {
	case errors.Is(err, store.ErrNotFound):
		resp.Error, status = err.Error(), http.StatusNotFound
	case err != nil:
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	h.log.Info("deleted config", "objects", len(deleted), "remote", r.RemoteAddr)
	writeJSON(w, status, resp)
}

func (h *handler) get(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	kind := q.Get("kind")
	if kind != "" {
		k, ok := config.LookupKind(kind)
		if !ok {
			writeError(w, http.StatusBadRequest, fmt.Errorf("unknown kind %q; known kinds: %s", kind, strings.Join(config.Kinds(), ", ")))
			return
		}
		kind = k
	}
	ns, name := q.Get("namespace"), q.Get("name")
	objs := h.opts.Store.List(kind, ns)
	if name != "" {
		var match []*config.Object
		for _, o := range objs {
			if o.Name == name {
				match = append(match, o)
			}
		}
		if len(match) == 0 {
			writeError(w, http.StatusNotFound, fmt.Errorf("%s %q not found in %s", kindOrAny(kind), name, nsOrAll(ns)))
			return
		}
		objs = match
	}
	if q.Get("format") == "yaml" || strings.Contains(r.Header.Get("Accept"), "yaml") {
		h.writeYAML(w, objs)
		return
	}
	if objs == nil {
		objs = []*config.Object{}
	}
	writeJSON(w, http.StatusOK, ConfigResponse{Objects: objs})
}

func (h *handler) writeYAML(w http.ResponseWriter, objs []*config.Object) {
	out, err := config.Marshal(objs)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	w.Header().Set("Content-Type", "application/yaml")
	if _, err := w.Write(out); err != nil {
		h.log.Debug("writing response", "error", err)
	}
}

func kindOrAny(kind string) string {
	if kind == "" {
		return "object"
	}
	return kind
}

func nsOrAll(ns string) string {
	if ns == "" {
		return "any namespace"
	}
	return "namespace " + ns
}

func (h *handler) proxies(w http.ResponseWriter, _ *http.Request) {
	var list []xdsserver.ProxyStatus
	if h.opts.Proxies != nil {
		list = h.opts.Proxies()
	}
	if list == nil {
		list = []xdsserver.ProxyStatus{}
	}
	writeJSON(w, http.StatusOK, ProxiesResponse{Proxies: list})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client went away; nothing to do
}

func writeError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, ErrorResponse{Error: err.Error()})
}
