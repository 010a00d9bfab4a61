package tracing

import "go.opentelemetry.io/otel/attribute"

// Tag keys of a proxy span, as Envoy and Istio write them, so that traces
// read the same in Jaeger or Zipkin as an Istio mesh's.
const (
	KeyHTTPMethod          = "http.method"
	KeyHTTPURL             = "http.url"
	KeyHTTPProtocol        = "http.protocol"
	KeyHTTPStatusCode      = "http.status_code"
	KeyUserAgent           = "user_agent"
	KeyRequestSize         = "request_size"
	KeyResponseSize        = "response_size"
	KeyResponseFlags       = "response_flags"
	KeyUpstreamCluster     = "upstream_cluster"
	KeyUpstreamClusterName = "upstream_cluster.name"
	KeyPeerAddress         = "peer.address"
	KeyRequestID           = "guid:x-request-id"
	KeyCanonicalService    = "istio.canonical_service"
	KeyCanonicalRevision   = "istio.canonical_revision"
	KeyNamespace           = "istio.namespace"
	KeyMeshID              = "istio.mesh_id"
	KeyNodeID              = "node_id"
	KeyComponent           = "component"
	KeyError               = "error"
	KeyDownstreamCluster   = "downstream_cluster"
)

// DefaultMeshID is Istio's default istio.mesh_id.
const DefaultMeshID = "cluster.local"

// RequestAttributes returns the request tags Envoy sets when a span starts.
// userAgent and requestID are omitted when empty.
func RequestAttributes(method, url, proto, userAgent, requestID string) []attribute.KeyValue {
	a := make([]attribute.KeyValue, 0, 5)
	a = append(a,
		attribute.String(KeyHTTPMethod, method),
		attribute.String(KeyHTTPURL, url),
		attribute.String(KeyHTTPProtocol, proto),
	)
	if userAgent != "" {
		a = append(a, attribute.String(KeyUserAgent, userAgent))
	}
	if requestID != "" {
		a = append(a, attribute.String(KeyRequestID, requestID))
	}
	return a
}

// UpstreamAttributes returns the tags naming the upstream cluster
// (e.g. "outbound|9080|v2|reviews.default.svc.cluster.local") and the
// peer's address.
func UpstreamAttributes(cluster, peerAddress string) []attribute.KeyValue {
	return []attribute.KeyValue{
		attribute.String(KeyUpstreamCluster, cluster),
		attribute.String(KeyUpstreamClusterName, cluster),
		attribute.String(KeyPeerAddress, peerAddress),
	}
}

// SizeAttributes returns request_size and response_size in bytes.
func SizeAttributes(requestSize, responseSize int64) []attribute.KeyValue {
	return []attribute.KeyValue{
		attribute.Int64(KeyRequestSize, requestSize),
		attribute.Int64(KeyResponseSize, responseSize),
	}
}
