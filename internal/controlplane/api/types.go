// Package api is the control plane's HTTP JSON API (apply, delete and get
// config; proxy sync status) and the Go client the CLI uses.
package api

import (
	"strings"

	"github.com/weft-mesh/weft/internal/config"
	"github.com/weft-mesh/weft/internal/controlplane/xdsserver"
)

// Paths of the API.
const (
	ConfigPath  = "/api/v1/config"
	ProxiesPath = "/api/v1/proxies"
)

// Actions reported per object by apply and delete.
const (
	ActionCreated    = "created"
	ActionConfigured = "configured"
	ActionUnchanged  = "unchanged"
	ActionDeleted    = "deleted"
)

// Result is what happened to one object.
type Result struct {
	Kind       string `json:"kind"`
	APIVersion string `json:"apiVersion"`
	Namespace  string `json:"namespace"`
	Name       string `json:"name"`
	Action     string `json:"action"`
}

// String formats the result as kubectl does:
// "virtualservice.networking.istio.io/reviews configured".
func (r Result) String() string {
	group := r.APIVersion
	if group == "" {
		group = config.DefaultAPIVersion(r.Kind)
	}
	if i := strings.IndexByte(group, '/'); i >= 0 {
		group = group[:i]
	}
	res := strings.ToLower(r.Kind)
	if group != "" {
		res += "." + group
	}
	return res + "/" + r.Name + " " + r.Action
}

func resultFor(o *config.Object, action string) Result {
	av := o.APIVersion
	if av == "" {
		av = config.DefaultAPIVersion(o.Kind)
	}
	return Result{Kind: o.Kind, APIVersion: av, Namespace: o.Namespace, Name: o.Name, Action: action}
}

// ChangeResponse is the body of a successful apply or delete, and of a
// delete that found only some of its objects (with Error set).
type ChangeResponse struct {
	Results []Result `json:"results"`
	Error   string   `json:"error,omitempty"`
	// Warnings are the analysis messages (`weft analyze`) about the applied
	// objects that did not make the apply fail, one formatted message each.
	Warnings []string `json:"warnings,omitempty"`
}

// ConfigResponse is the JSON body of GET /api/v1/config.
type ConfigResponse struct {
	Objects []*config.Object `json:"objects"`
}

// ProxiesResponse is the body of GET /api/v1/proxies.
type ProxiesResponse struct {
	Proxies []xdsserver.ProxyStatus `json:"proxies"`
}

// ErrorResponse is the body of every error.
type ErrorResponse struct {
	Error string `json:"error"`
}

// Query selects config objects; empty fields match all.
type Query struct {
	Kind      string // any spelling config.LookupKind accepts
	Namespace string
	Name      string
}
