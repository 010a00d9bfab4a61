package discovery

import (
	"context"
	"testing"

	apinetworking "istio.io/api/networking/v1alpha3"
	apisecurity "istio.io/api/security/v1beta1"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	networkingv1alpha3 "istio.io/client-go/pkg/apis/networking/v1alpha3"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	telemetryv1 "istio.io/client-go/pkg/apis/telemetry/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/weft-mesh/weft/internal/config"
)

// TestEveryKind: one object of each Istio kind is stored and gets its
// status written through its own typed client; a ServiceEntry keeps the
// addresses of its status.
func TestEveryKind(t *testing.T) {
	meta := func(name string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: name, Namespace: "default", Generation: 4}
	}
	vs := &networkingv1.VirtualService{ObjectMeta: meta("vs")}
	vs.Spec.Hosts = []string{"reviews"}
	vs.Spec.Http = []*apinetworking.HTTPRoute{{Route: []*apinetworking.HTTPRouteDestination{{Destination: &apinetworking.Destination{Host: "reviews"}}}}}
	dr := &networkingv1.DestinationRule{ObjectMeta: meta("dr")}
	dr.Spec.Host = "reviews"
	gw := &networkingv1.Gateway{ObjectMeta: meta("gw")}
	gw.Spec.Selector = map[string]string{"istio": "ingressgateway"}
	gw.Spec.Servers = []*apinetworking.Server{{Port: &apinetworking.Port{Number: 80, Name: "http", Protocol: "HTTP"}, Hosts: []string{"*"}}}
	se := &networkingv1.ServiceEntry{ObjectMeta: meta("se")}
	se.Spec.Hosts = []string{"api.example.com"}
	se.Spec.Ports = []*apinetworking.ServicePort{{Number: 443, Name: "tls", Protocol: "TLS"}}
	se.Spec.Resolution = apinetworking.ServiceEntry_DNS
	se.Status.Addresses = []*apinetworking.ServiceEntryAddress{{Value: "240.240.0.1", Host: "api.example.com"}}
	we := &networkingv1.WorkloadEntry{ObjectMeta: meta("we")}
	we.Spec.Address = "10.1.2.3"
	sc := &networkingv1.Sidecar{ObjectMeta: meta("sc")}
	sc.Spec.Egress = []*apinetworking.IstioEgressListener{{Hosts: []string{"./*"}}}
	pa := &securityv1.PeerAuthentication{ObjectMeta: meta("pa")}
	pa.Spec.Mtls = &apisecurity.PeerAuthentication_MutualTLS{Mode: apisecurity.PeerAuthentication_MutualTLS_STRICT}
	objs := []runtime.Object{vs, dr, se, we, sc, pa,
		&networkingv1alpha3.EnvoyFilter{ObjectMeta: meta("ef")},
		&securityv1.AuthorizationPolicy{ObjectMeta: meta("ap")},
		&securityv1.RequestAuthentication{ObjectMeta: meta("ra")},
		&telemetryv1.Telemetry{ObjectMeta: meta("tel")},
	}
	c := startCluster(t, "a", objs...)
	// The fake cannot be given a Gateway up front (it guesses the resource
	// "gatewaies"): created through the client, after the start.
	if _, err := c.istio.NetworkingV1().Gateways("default").Create(context.Background(), gw, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := len(c.ctl.kinds); got != len(config.Kinds()) || got != len(objs)+1 {
		t.Fatalf("%d kinds watched, config knows %d, test has %d objects", got, len(config.Kinds()), len(objs)+1)
	}
	for _, k := range c.ctl.kinds {
		waitFor(t, k.kind+"'s status", func() bool {
			items := k.informer.GetStore().List()
			if len(items) != 1 {
				return false
			}
			_, _, st, _ := k.parts(items[0])
			cond := reconciled(istioStatus(st))
			return cond != nil && cond.GetObservedGeneration() == 4
		})
		items := k.informer.GetStore().List()
		m, _, st, _ := k.parts(items[0])
		if cond := reconciled(istioStatus(st)); cond.GetStatus() != "True" {
			t.Errorf("%s %s: %v", k.kind, m.GetName(), cond)
		}
		if o, ok := c.store.Get(config.Key{Kind: k.kind, Namespace: "default", Name: m.GetName()}); !ok || o.APIVersion != k.apiVersion {
			t.Errorf("%s %s not stored as %s: %+v", k.kind, m.GetName(), k.apiVersion, o)
		}
	}
	got, err := c.istio.NetworkingV1().ServiceEntries("default").Get(context.Background(), "se", metav1.GetOptions{})
	if err != nil || len(got.Status.GetAddresses()) != 1 || got.Status.GetAddresses()[0].GetValue() != "240.240.0.1" {
		t.Errorf("ServiceEntry status addresses after the status write: %v, %v", got.Status.GetAddresses(), err)
	}
}
