package api

import (
	"net/http"

	"github.com/weft-mesh/weft/internal/analyze"
	"github.com/weft-mesh/weft/internal/controlplane/registry"
)

// AnalyzePath is where the live config's analysis is served.
const AnalyzePath = "/api/v1/analyze"

// AnalyzeResponse is the body of GET /api/v1/analyze.
type AnalyzeResponse struct {
	Messages []AnalyzeMessage `json:"messages"`
}

// AnalyzeMessage is one `weft analyze` message (as istioctl analyze -o json
// prints it) with the object it is about, so that a page can show it beside
// the object.
type AnalyzeMessage struct {
	Code             string `json:"code"`
	Name             string `json:"name"`
	Level            string `json:"level"`
	Message          string `json:"message"`
	Origin           string `json:"origin"`
	DocumentationURL string `json:"documentationUrl,omitempty"`
	// Kind, Namespace and ObjectName identify the object (empty for a
	// document that is not an object).
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace"`
	ObjectName string `json:"objectName"`
}

// analyzeLive answers GET /api/v1/analyze[?namespace=NS]: `weft analyze
// --live` over the stored config, messages about objects of NS (or all).
func (h *handler) analyzeLive(w http.ResponseWriter, r *http.Request) {
	ns := r.URL.Query().Get("namespace")
	_, stored := h.opts.Store.Snapshot()
	msgs, err := analyze.AnalyzeContext(r.Context(), stored, h.services())
	if err != nil { // the caller went away
		writeError(w, http.StatusServiceUnavailable, err)
		return
	}
	resp := AnalyzeResponse{Messages: []AnalyzeMessage{}}
	for _, m := range msgs {
		if ns != "" && m.Resource.Namespace != ns {
			continue
		}
		resp.Messages = append(resp.Messages, messageFor(m))
	}
	writeJSON(w, http.StatusOK, resp)
}

func messageFor(m analyze.Message) AnalyzeMessage {
	key := m.Resource
	return AnalyzeMessage{Code: m.Code.ID, Name: m.Code.Name, Level: m.Code.Level.String(), Message: m.Text,
		Origin: m.Origin, DocumentationURL: m.Code.DocURL(), Kind: key.Kind, Namespace: key.Namespace, ObjectName: key.Name}
}

// services is the platform's registry for analysis (nil without one).
func (h *handler) services() *registry.Registry {
	if h.opts.Services == nil {
		return nil
	}
	return h.opts.Services()
}
