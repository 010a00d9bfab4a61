package discovery

import (
	"context"

	"google.golang.org/protobuf/proto"
	metav1alpha1 "istio.io/api/meta/v1alpha1"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	networkingv1alpha3 "istio.io/client-go/pkg/apis/networking/v1alpha3"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	telemetryv1 "istio.io/client-go/pkg/apis/telemetry/v1"
	istioclient "istio.io/client-go/pkg/clientset/versioned"
	istioinformers "istio.io/client-go/pkg/informers/externalversions"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/cache"

	"github.com/weft-mesh/weft/internal/config"
)

// crdKind is one Istio kind read from the API server: its informer, how to
// see an object's metadata, spec and status, and how to write its status.
type crdKind struct {
	kind       string // config.KindVirtualService...
	apiVersion string // the version watched, e.g. networking.istio.io/v1
	informer   cache.SharedIndexInformer
	// parts returns obj's metadata, spec and status (shared: read only).
	// The status is an IstioStatus, or a kind's own message with the same
	// fields and more (ServiceEntryStatus).
	parts func(obj any) (metav1.Object, proto.Message, proto.Message, bool)
	// writeStatus updates obj's status subresource: status's fields replace
	// the same fields of obj's (obj is not modified).
	writeStatus func(ctx context.Context, obj any, status *metav1alpha1.IstioStatus) error
}

// istioObject is what every Istio client-go type is.
type istioObject interface {
	metav1.Object
	runtime.Object
}

// newKind builds a crdKind for the client-go type T.
func newKind[T istioObject](kind, apiVersion string, inf cache.SharedIndexInformer,
	fields func(T) (proto.Message, proto.Message),
	update func(context.Context, T, metav1.UpdateOptions) (T, error),
) crdKind {
	return crdKind{
		kind: kind, apiVersion: apiVersion, informer: inf,
		parts: func(obj any) (metav1.Object, proto.Message, proto.Message, bool) {
			o, ok := obj.(T)
			if !ok {
				return nil, nil, nil, false
			}
			spec, status := fields(o)
			return o, spec, status, true
		},
		writeStatus: func(ctx context.Context, obj any, status *metav1alpha1.IstioStatus) error {
			o := obj.(T).DeepCopyObject().(T)
			_, st := fields(o)
			copyStatus(st, status)
			_, err := update(ctx, o, metav1.UpdateOptions{})
			return err
		},
	}
}

// istioKinds lists the Istio kinds weft knows (config.Kinds), each at the
// version Istio stores (v1; EnvoyFilter only has v1alpha3).
func istioKinds(c istioclient.Interface, f istioinformers.SharedInformerFactory) []crdKind {
	nw, nwa, sec, tel := f.Networking().V1(), f.Networking().V1alpha3(), f.Security().V1(), f.Telemetry().V1()
	const (
		networking = config.GroupNetworking + "/v1"
		security   = config.GroupSecurity + "/v1"
		telemetry  = config.GroupTelemetry + "/v1"
	)
	return []crdKind{
		newKind(config.KindVirtualService, networking, nw.VirtualServices().Informer(),
			func(o *networkingv1.VirtualService) (proto.Message, proto.Message) { return &o.Spec, &o.Status },
			func(ctx context.Context, o *networkingv1.VirtualService, u metav1.UpdateOptions) (*networkingv1.VirtualService, error) {
				return c.NetworkingV1().VirtualServices(o.Namespace).UpdateStatus(ctx, o, u)
			}),
		newKind(config.KindDestinationRule, networking, nw.DestinationRules().Informer(),
			func(o *networkingv1.DestinationRule) (proto.Message, proto.Message) { return &o.Spec, &o.Status },
			func(ctx context.Context, o *networkingv1.DestinationRule, u metav1.UpdateOptions) (*networkingv1.DestinationRule, error) {
				return c.NetworkingV1().DestinationRules(o.Namespace).UpdateStatus(ctx, o, u)
			}),
		newKind(config.KindGateway, networking, nw.Gateways().Informer(),
			func(o *networkingv1.Gateway) (proto.Message, proto.Message) { return &o.Spec, &o.Status },
			func(ctx context.Context, o *networkingv1.Gateway, u metav1.UpdateOptions) (*networkingv1.Gateway, error) {
				return c.NetworkingV1().Gateways(o.Namespace).UpdateStatus(ctx, o, u)
			}),
		newKind(config.KindServiceEntry, networking, nw.ServiceEntries().Informer(),
			func(o *networkingv1.ServiceEntry) (proto.Message, proto.Message) { return &o.Spec, &o.Status },
			func(ctx context.Context, o *networkingv1.ServiceEntry, u metav1.UpdateOptions) (*networkingv1.ServiceEntry, error) {
				return c.NetworkingV1().ServiceEntries(o.Namespace).UpdateStatus(ctx, o, u)
			}),
		newKind(config.KindWorkloadEntry, networking, nw.WorkloadEntries().Informer(),
			func(o *networkingv1.WorkloadEntry) (proto.Message, proto.Message) { return &o.Spec, &o.Status },
			func(ctx context.Context, o *networkingv1.WorkloadEntry, u metav1.UpdateOptions) (*networkingv1.WorkloadEntry, error) {
				return c.NetworkingV1().WorkloadEntries(o.Namespace).UpdateStatus(ctx, o, u)
			}),
		newKind(config.KindSidecar, networking, nw.Sidecars().Informer(),
			func(o *networkingv1.Sidecar) (proto.Message, proto.Message) { return &o.Spec, &o.Status },
			func(ctx context.Context, o *networkingv1.Sidecar, u metav1.UpdateOptions) (*networkingv1.Sidecar, error) {
				return c.NetworkingV1().Sidecars(o.Namespace).UpdateStatus(ctx, o, u)
			}),
		newKind(config.KindEnvoyFilter, config.GroupNetworking+"/v1alpha3", nwa.EnvoyFilters().Informer(),
			func(o *networkingv1alpha3.EnvoyFilter) (proto.Message, proto.Message) { return &o.Spec, &o.Status },
			func(ctx context.Context, o *networkingv1alpha3.EnvoyFilter, u metav1.UpdateOptions) (*networkingv1alpha3.EnvoyFilter, error) {
				return c.NetworkingV1alpha3().EnvoyFilters(o.Namespace).UpdateStatus(ctx, o, u)
			}),
		newKind(config.KindPeerAuthentication, security, sec.PeerAuthentications().Informer(),
			func(o *securityv1.PeerAuthentication) (proto.Message, proto.Message) { return &o.Spec, &o.Status },
			func(ctx context.Context, o *securityv1.PeerAuthentication, u metav1.UpdateOptions) (*securityv1.PeerAuthentication, error) {
				return c.SecurityV1().PeerAuthentications(o.Namespace).UpdateStatus(ctx, o, u)
			}),
		newKind(config.KindAuthorizationPolicy, security, sec.AuthorizationPolicies().Informer(),
			func(o *securityv1.AuthorizationPolicy) (proto.Message, proto.Message) { return &o.Spec, &o.Status },
			func(ctx context.Context, o *securityv1.AuthorizationPolicy, u metav1.UpdateOptions) (*securityv1.AuthorizationPolicy, error) {
				return c.SecurityV1().AuthorizationPolicies(o.Namespace).UpdateStatus(ctx, o, u)
			}),
		newKind(config.KindRequestAuthentication, security, sec.RequestAuthentications().Informer(),
			func(o *securityv1.RequestAuthentication) (proto.Message, proto.Message) { return &o.Spec, &o.Status },
			func(ctx context.Context, o *securityv1.RequestAuthentication, u metav1.UpdateOptions) (*securityv1.RequestAuthentication, error) {
				return c.SecurityV1().RequestAuthentications(o.Namespace).UpdateStatus(ctx, o, u)
			}),
		newKind(config.KindTelemetry, telemetry, tel.Telemetries().Informer(),
			func(o *telemetryv1.Telemetry) (proto.Message, proto.Message) { return &o.Spec, &o.Status },
			func(ctx context.Context, o *telemetryv1.Telemetry, u metav1.UpdateOptions) (*telemetryv1.Telemetry, error) {
				return c.TelemetryV1().Telemetries(o.Namespace).UpdateStatus(ctx, o, u)
			}),
	}
}

// copyStatus sets the fields of dst that src has (by name: conditions,
// validation_messages, observed_generation) to src's values, leaving the
// others (a ServiceEntry's allocated addresses) as they are.
func copyStatus(dst, src proto.Message) {
	d, s := dst.ProtoReflect(), src.ProtoReflect()
	fields := s.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		sf := fields.Get(i)
		df := d.Descriptor().Fields().ByName(sf.Name())
		if df == nil {
			continue
		}
		if s.Has(sf) {
			d.Set(df, s.Get(sf))
		} else {
			d.Clear(df)
		}
	}
}

// istioStatus reads the IstioStatus fields of a kind's status message.
func istioStatus(st proto.Message) *metav1alpha1.IstioStatus {
	out := &metav1alpha1.IstioStatus{}
	if st != nil {
		copyStatus(out, proto.Clone(st))
	}
	return out
}
