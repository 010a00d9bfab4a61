// Package xdsmeta holds what weft's control plane and its proxy agree on
// beyond Envoy's protos: metadata keys, Istio's access log format, the
// attribute expressions of metric tag overrides and the protocols port
// names select. It is small and imports no Istio API, so the proxy need not
// link internal/config (Istio's YAML and its protos) to read them.
package xdsmeta

// MetadataServiceAddresses is the cluster filter_metadata key under which
// the control plane lists a service's VIPs on its outbound|PORT||HOST
// cluster ({host: HOST, addresses: [VIP...]}); the sidecar's DNS proxy
// answers HOST with them.
const MetadataServiceAddresses = "weft.service"
