// Package xdsclient is weft proxy's ADS client: it subscribes to listeners,
// routes, clusters and endpoints, hands each update to a Handler, and ACKs
// or NACKs it.
package xdsclient

import "google.golang.org/protobuf/proto"

// Type URLs the client subscribes to.
const (
	ListenerType = "type.googleapis.com/envoy.config.listener.v3.Listener"
	RouteType    = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
	ClusterType  = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
	EndpointType = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
)

// Handler applies xDS updates. Update is called one at a time, never
// concurrently. It receives the complete set of resources of one type
// (state of the world), keyed by resource name, already decoded into their
// go-control-plane message types. Returning an error NACKs the update with
// the error's text; the Handler must then keep its last good config.
type Handler interface {
	Update(typeURL, version string, resources map[string]proto.Message) error
}
