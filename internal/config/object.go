// Package config turns Istio YAML into istio.io/api spec messages and back,
// and validates them. It is shared by the control plane and the CLI.
package config

import (
	"google.golang.org/protobuf/proto"

	"github.com/weft-mesh/weft/internal/xdsmeta"
)

// Kind names as Istio spells them.
const (
	KindVirtualService  = "VirtualService"
	KindDestinationRule = "DestinationRule"
	KindGateway         = "Gateway"
	KindServiceEntry    = "ServiceEntry"
	KindWorkloadEntry   = "WorkloadEntry"
)

// AnnotationAutoRegistered marks a WorkloadEntry (or ServiceEntry) the control
// plane created for a proxy that registered itself.
const AnnotationAutoRegistered = "weft.io/auto-registered"

// AnnotationMTLS marks a WorkloadEntry whose sidecar holds a mesh
// certificate and speaks mutual TLS to its peers.
const AnnotationMTLS = "weft.io/mtls"

// AnnotationWorkload names the workload a WorkloadEntry is an instance of
// (reviews-v2 for reviews-v2-1), as Istio's source_workload and
// destination_workload name it; without it the WorkloadEntry's name is the
// workload, as for Istio's WorkloadEntries.
const AnnotationWorkload = "weft.io/workload"

// MetadataServiceAddresses is xdsmeta.MetadataServiceAddresses.
const MetadataServiceAddresses = xdsmeta.MetadataServiceAddresses

// AnnotationGateway marks a WorkloadEntry registered by a gateway (weft
// gateway, a router proxy): it takes traffic on its servers' ports
// directly, not through a sidecar's inbound port.
const AnnotationGateway = "weft.io/gateway"

// Object is one Istio config object: its identity, metadata and spec.
// Objects are immutable once built; copy before changing.
type Object struct {
	// Kind is the Istio kind, e.g. "VirtualService".
	Kind string
	// APIVersion is group/version as written, e.g. "networking.istio.io/v1".
	APIVersion string
	// Name and Namespace identify the object; Namespace defaults to "default".
	Name      string
	Namespace string
	// Labels and Annotations are the object's metadata.
	Labels      map[string]string
	Annotations map[string]string
	// Spec is the istio.io/api message for Kind (e.g. *networkingv1alpha3.VirtualService).
	Spec proto.Message
	// Source is where the object came from ("file.yaml", "api", "auto-registration").
	Source string
	// ResourceVersion is set by the store; it increases on every change.
	ResourceVersion int64
}

// Key identifies an object in the store.
type Key struct {
	Kind      string
	Namespace string
	Name      string
}

// Key returns the object's store key.
func (o *Object) Key() Key { return Key{Kind: o.Kind, Namespace: o.Namespace, Name: o.Name} }

// String returns "Kind namespace/name", the form used in error messages.
func (k Key) String() string { return k.Kind + " " + k.Namespace + "/" + k.Name }
