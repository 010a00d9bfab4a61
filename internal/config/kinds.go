package config

import (
	"sort"
	"strings"

	"google.golang.org/protobuf/proto"
	networking "istio.io/api/networking/v1alpha3"
	security "istio.io/api/security/v1beta1"
	telemetry "istio.io/api/telemetry/v1alpha1"
)

// Kinds beyond the networking ones in object.go, accepted so that later work
// can act on them.
const (
	KindSidecar               = "Sidecar"
	KindPeerAuthentication    = "PeerAuthentication"
	KindAuthorizationPolicy   = "AuthorizationPolicy"
	KindRequestAuthentication = "RequestAuthentication"
	KindTelemetry             = "Telemetry"
	KindEnvoyFilter           = "EnvoyFilter"
)

// API groups of Istio's config.
const (
	GroupNetworking = "networking.istio.io"
	GroupSecurity   = "security.istio.io"
	GroupTelemetry  = "telemetry.istio.io"
)

// kindInfo describes one supported kind.
type kindInfo struct {
	kind     string
	group    string
	versions []string // accepted versions, preferred first
	aliases  []string // lower-case short names and plurals for the CLI
	newSpec  func() proto.Message
}

var networkingVersions = []string{"v1", "v1beta1", "v1alpha3"}

// kindTable lists every kind weft accepts.
var kindTable = []kindInfo{
	{KindVirtualService, GroupNetworking, networkingVersions, []string{"virtualservices", "vs"},
		func() proto.Message { return &networking.VirtualService{} }},
	{KindDestinationRule, GroupNetworking, networkingVersions, []string{"destinationrules", "dr"},
		func() proto.Message { return &networking.DestinationRule{} }},
	{KindGateway, GroupNetworking, networkingVersions, []string{"gateways", "gw"},
		func() proto.Message { return &networking.Gateway{} }},
	{KindServiceEntry, GroupNetworking, networkingVersions, []string{"serviceentries", "se"},
		func() proto.Message { return &networking.ServiceEntry{} }},
	{KindWorkloadEntry, GroupNetworking, networkingVersions, []string{"workloadentries", "we"},
		func() proto.Message { return &networking.WorkloadEntry{} }},
	{KindSidecar, GroupNetworking, networkingVersions, []string{"sidecars"},
		func() proto.Message { return &networking.Sidecar{} }},
	{KindEnvoyFilter, GroupNetworking, []string{"v1alpha3"}, []string{"envoyfilters", "ef"},
		func() proto.Message { return &networking.EnvoyFilter{} }},
	{KindPeerAuthentication, GroupSecurity, []string{"v1", "v1beta1"}, []string{"peerauthentications", "pa"},
		func() proto.Message { return &security.PeerAuthentication{} }},
	{KindAuthorizationPolicy, GroupSecurity, []string{"v1", "v1beta1"}, []string{"authorizationpolicies", "ap"},
		func() proto.Message { return &security.AuthorizationPolicy{} }},
	{KindRequestAuthentication, GroupSecurity, []string{"v1", "v1beta1"}, []string{"requestauthentications", "ra"},
		func() proto.Message { return &security.RequestAuthentication{} }},
	{KindTelemetry, GroupTelemetry, []string{"v1", "v1alpha1"}, []string{"telemetries"},
		func() proto.Message { return &telemetry.Telemetry{} }},
}

func lookupKindInfo(kind string) (*kindInfo, bool) {
	for i := range kindTable {
		if kindTable[i].kind == kind {
			return &kindTable[i], true
		}
	}
	return nil, false
}

// LookupKind maps what a user types on the command line (VirtualService,
// virtualservice, virtualservices, vs, ...) to the Istio kind name.
func LookupKind(s string) (kind string, ok bool) {
	l := strings.ToLower(strings.TrimSpace(s))
	if i := strings.IndexByte(l, '.'); i > 0 { // virtualservices.networking.istio.io
		l = l[:i]
	}
	for _, k := range kindTable {
		if l == strings.ToLower(k.kind) {
			return k.kind, true
		}
		for _, a := range k.aliases {
			if l == a {
				return k.kind, true
			}
		}
	}
	return "", false
}

// Kinds returns every supported kind name, sorted.
func Kinds() []string {
	out := make([]string, 0, len(kindTable))
	for _, k := range kindTable {
		out = append(out, k.kind)
	}
	sort.Strings(out)
	return out
}

// DefaultAPIVersion returns the preferred group/version for kind
// (e.g. "networking.istio.io/v1"), or "" if kind is not supported.
func DefaultAPIVersion(kind string) string {
	k, ok := lookupKindInfo(kind)
	if !ok {
		return ""
	}
	return k.group + "/" + k.versions[0]
}

// supportedList describes every kind and its accepted apiVersions, for
// errors: "networking.istio.io/{v1,v1beta1,v1alpha3} VirtualService, ...".
func supportedList() string {
	var parts []string
	for i := 0; i < len(kindTable); {
		k := kindTable[i]
		var kinds []string
		for ; i < len(kindTable) && kindTable[i].group == k.group; i++ {
			kinds = append(kinds, kindTable[i].kind)
		}
		parts = append(parts, k.group+"/{"+strings.Join(k.versions, ",")+"} "+strings.Join(kinds, ", "))
	}
	return strings.Join(parts, "; ")
}

// isIstioGroup reports whether an apiVersion belongs to an Istio API group.
func isIstioGroup(apiVersion string) bool {
	group, _, _ := strings.Cut(apiVersion, "/")
	return strings.HasSuffix(group, ".istio.io")
}

// KindSchema describes a supported kind as a Kubernetes API resource: the
// CRD that serves it on a cluster is generated from it.
type KindSchema struct {
	Kind  string
	Group string
	// Versions are the accepted versions, the preferred (stored) one first.
	Versions []string
	// Plural is the lower-case resource name (virtualservices).
	Plural string
	// ShortNames are the other lower-case names the CLI accepts (vs).
	ShortNames []string
}

// KindSchemas returns every supported kind in a stable order (by group,
// then as weft lists them).
func KindSchemas() []KindSchema {
	out := make([]KindSchema, 0, len(kindTable))
	for _, k := range kindTable {
		out = append(out, KindSchema{Kind: k.kind, Group: k.group, Versions: append([]string(nil), k.versions...),
			Plural: k.aliases[0], ShortNames: append([]string(nil), k.aliases[1:]...)})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Group < out[j].Group })
	return out
}
