package api

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/weft-mesh/weft/internal/config"
	"github.com/weft-mesh/weft/internal/controlplane/authz"
	"github.com/weft-mesh/weft/internal/controlplane/store"
)

// The config history's paths: GET HistoryPath[?kind=K&namespace=NS&name=N]
// lists revisions (newest first, without their objects), GET
// HistoryPath/REV is one with its objects, GET DiffPath?from=A[&to=B] is a
// unified YAML diff (to: now), POST RollbackPath?revision=REV writes the
// config of revision REV back as a new revision.
const (
	HistoryPath  = "/api/v1/history"
	DiffPath     = "/api/v1/diff"
	RollbackPath = "/api/v1/rollback"
)

// Historian is a store that keeps a history of revisions (store.Mem).
type Historian interface {
	store.Store
	ApplyBy(actor string, objs []*config.Object) ([]*config.Object, error)
	DeleteBy(actor string, keys []config.Key) ([]config.Key, error)
	History(kind, namespace, name string) []store.Revision
	Revision(n int64) (store.Revision, error)
	Diff(from, to int64) (string, error)
	PlanRollback(rev int64) (store.RollbackPlan, error)
	Rollback(p store.RollbackPlan, actor string) (int64, error)
}

// HistoryResponse is the answer of GET HistoryPath.
type HistoryResponse struct {
	Revisions []store.Revision `json:"revisions"`
}

// DiffResponse is the answer of GET DiffPath.
type DiffResponse struct {
	Diff string `json:"diff"`
}

// RollbackResponse is the answer of POST RollbackPath: the revision the
// rollback made (the current one when nothing had to change) and what it
// wrote.
type RollbackResponse struct {
	Revision int64    `json:"revision"`
	Results  []Result `json:"results"`
}

func (h *handler) historian(w http.ResponseWriter) (Historian, bool) {
	hs, ok := h.opts.Store.(Historian)
	if !ok {
		writeError(w, http.StatusNotImplemented, errors.New("this control plane's store keeps no history"))
	}
	return hs, ok
}

func (h *handler) history(w http.ResponseWriter, r *http.Request) {
	hs, ok := h.historian(w)
	if !ok {
		return
	}
	q := r.URL.Query()
	kind := q.Get("kind")
	if kind != "" {
		k, ok := config.LookupKind(kind)
		if !ok {
			writeError(w, http.StatusBadRequest, fmt.Errorf("unknown kind %q", kind))
			return
		}
		kind = k
	}
	revs := hs.History(kind, q.Get("namespace"), q.Get("name"))
	out := HistoryResponse{Revisions: make([]store.Revision, 0, len(revs))}
	for _, rev := range revs {
		cs := make([]store.Change, len(rev.Changes))
		for i, c := range rev.Changes {
			c.Old, c.New = nil, nil // the list names objects; GET HistoryPath/REV has them
			cs[i] = c
		}
		rev.Changes = cs
		out.Revisions = append(out.Revisions, rev)
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *handler) revision(w http.ResponseWriter, r *http.Request) {
	hs, ok := h.historian(w)
	if !ok {
		return
	}
	n, err := strconv.ParseInt(r.PathValue("rev"), 10, 64)
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("revision %q: want a number", r.PathValue("rev")))
		return
	}
	rev, err := hs.Revision(n)
	if err != nil {
		writeError(w, http.StatusNotFound, err)
		return
	}
	writeJSON(w, http.StatusOK, rev)
}

func (h *handler) diff(w http.ResponseWriter, r *http.Request) {
	hs, ok := h.historian(w)
	if !ok {
		return
	}
	from, err := revisionParam(r.URL.Query(), "from", true)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	to, err := revisionParam(r.URL.Query(), "to", false)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	d, err := hs.Diff(from, to)
	if err != nil {
		writeError(w, historyStatus(err), err)
		return
	}
	writeJSON(w, http.StatusOK, DiffResponse{Diff: d})
}

func (h *handler) rollback(w http.ResponseWriter, r *http.Request) {
	hs, ok := h.historian(w)
	if !ok {
		return
	}
	if !h.authenticated(w, r) {
		return
	}
	rev, err := revisionParam(r.URL.Query(), "revision", true)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	plan, err := hs.PlanRollback(rev)
	if err != nil {
		writeError(w, historyStatus(err), err)
		return
	}
	var acts []authz.Action
	for _, o := range plan.Puts {
		verb := authz.VerbCreate
		if _, ok := hs.Get(o.Key()); ok {
			verb = authz.VerbUpdate
		}
		acts = append(acts, authz.ConfigAction(verb, o.Kind, o.Namespace, o.Name))
	}
	for _, k := range plan.Deletes {
		acts = append(acts, authz.ConfigAction(authz.VerbDelete, k.Kind, k.Namespace, k.Name))
	}
	if len(acts) > 0 && !h.opts.Authorizer.Check(w, r, acts...) {
		return
	}
	made, err := hs.Rollback(plan, fmt.Sprintf("%s (rollback to %d)", h.actorName(r), rev))
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	resp := RollbackResponse{Revision: made, Results: []Result{}}
	for _, o := range plan.Puts {
		resp.Results = append(resp.Results, resultFor(o, ActionConfigured))
	}
	for _, k := range plan.Deletes {
		resp.Results = append(resp.Results, Result{Kind: k.Kind, APIVersion: config.DefaultAPIVersion(k.Kind), Namespace: k.Namespace, Name: k.Name, Action: ActionDeleted})
	}
	h.log.Info("rolled back config", "to", rev, "revision", made, "objects", len(resp.Results), "remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, resp)
}

// actorName is how the history names r's caller.
func (h *handler) actorName(r *http.Request) string {
	if u, err := h.opts.Authorizer.UserOf(r); err == nil && u != nil && u.Name != "" {
		return u.Name
	}
	return store.SourceAPI
}

func revisionParam(q url.Values, name string, required bool) (int64, error) {
	v := q.Get(name)
	if v == "" {
		if required {
			return 0, fmt.Errorf("%s: a revision number is required", name)
		}
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%s %q: want a revision number", name, v)
	}
	return n, nil
}

func historyStatus(err error) int {
	if errors.Is(err, store.ErrRevision) {
		return http.StatusNotFound
	}
	return http.StatusBadRequest
}
