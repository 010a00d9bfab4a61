package controlplane

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/structpb"
	apinetworking "istio.io/api/networking/v1alpha3"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	istiofake "istio.io/client-go/pkg/clientset/versioned/fake"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
	kubefake "k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/weft-mesh/weft/internal/controlplane/xdsserver"
)

const reviewsV1 = "outbound|9080|v1|reviews.default.svc.cluster.local"

func reviewsSlice(ips ...string) *discoveryv1.EndpointSlice {
	sl := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "reviews-x1", Namespace: "default", Labels: map[string]string{discoveryv1.LabelServiceName: "reviews"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptrTo("http"), Port: ptrTo(int32(9080))}},
	}
	for i, ip := range ips {
		sl.Endpoints = append(sl.Endpoints, discoveryv1.Endpoint{Addresses: []string{ip},
			TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "reviews-v1-" + string(rune('a'+i))}})
	}
	return sl
}

func ptrTo[T any](v T) *T { return &v }

func reviewsPod(name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Labels: map[string]string{"app": "reviews", "version": "v1"}},
		Spec:       corev1.PodSpec{ServiceAccountName: "bookinfo-reviews", Containers: []corev1.Container{{Name: "reviews"}, {Name: "istio-proxy"}}},
	}
}

// TestKubernetesDiscoveryServesXDS runs the control plane in-process on
// fake clientsets: a Service, its EndpointSlice and pods, a VirtualService
// and a DestinationRule become the clusters, endpoints and routes a proxy
// receives over ADS, and an EndpointSlice update is pushed.
func TestKubernetesDiscoveryServesXDS(t *testing.T) {
	kc := kubefake.NewClientset(
		&corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "reviews", Namespace: "default"},
			Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.20", ClusterIPs: []string{"10.96.0.20"},
				Ports: []corev1.ServicePort{{Name: "http", Port: 9080, TargetPort: intstr.FromInt32(9080)}}},
		},
		reviewsPod("reviews-v1-a"), reviewsPod("reviews-v1-b"), reviewsSlice("10.1.0.5"),
	)
	var sliceWatches atomic.Int32
	kc.PrependWatchReactor("endpointslices", func(a k8stesting.Action) (bool, watch.Interface, error) {
		w, err := kc.Tracker().Watch(a.GetResource(), a.GetNamespace())
		if err == nil {
			sliceWatches.Add(1)
		}
		return true, w, err
	})
	vs := &networkingv1.VirtualService{ObjectMeta: metav1.ObjectMeta{Name: "reviews", Namespace: "default"}}
	vs.Spec.Hosts = []string{"reviews"}
	vs.Spec.Http = []*apinetworking.HTTPRoute{{Route: []*apinetworking.HTTPRouteDestination{{
		Destination: &apinetworking.Destination{Host: "reviews", Subset: "v1"}}}}}
	dr := &networkingv1.DestinationRule{ObjectMeta: metav1.ObjectMeta{Name: "reviews", Namespace: "default"}}
	dr.Spec.Host = "reviews"
	dr.Spec.Subsets = []*apinetworking.Subset{{Name: "v1", Labels: map[string]string{"version": "v1"}}}
	ic := istiofake.NewSimpleClientset(vs, dr)

	xdsAddr, _ := startControlPlane(t, Options{
		Debounce: time.Millisecond, SecureXDSAddress: off, ConsoleAddress: off,
		KubeClient: kc, KubeNamespace: "weft-system", Discovery: &DiscoveryOptions{IstioClient: ic, Identity: "weftd-0"},
	})
	conn, err := grpc.NewClient(xdsAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stream, err := discoverygrpc.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	md, _ := structpb.NewStruct(map[string]any{"NAMESPACE": "default", "WORKLOAD_NAME": "productpage-v1-1",
		"INSTANCE_IPS": "127.0.88.9", "LABELS": map[string]any{"app": "productpage", "version": "v1"}})
	node := &core.Node{Id: "sidecar~127.0.88.9~productpage-v1-1.default~default.svc.cluster.local", Metadata: md}
	// In ADS mode EDS must name every cluster of CDS, as Envoy does: EDS
	// is subscribed when CDS comes.
	names := map[string][]string{xdsserver.RouteType: {"9080"}}
	for _, typ := range []string{xdsserver.ClusterType, xdsserver.ListenerType, xdsserver.RouteType} {
		req := &discoverygrpc.DiscoveryRequest{TypeUrl: typ, ResourceNames: names[typ]}
		if typ == xdsserver.ClusterType {
			req.Node = node
		}
		if err := stream.Send(req); err != nil {
			t.Fatal(err)
		}
	}
	// recv ACKs responses until the endpoints of reviews v1 are want, the
	// cluster exists and the route goes to it.
	var routed, clustered bool
	recvEndpoints := func(want ...string) {
		t.Helper()
		for {
			resp, err := stream.Recv()
			if err != nil {
				t.Fatalf("waiting for endpoints %v (cluster %s: %v, routed to it: %v): %v", want, reviewsV1, clustered, routed, err)
			}
			if err := stream.Send(&discoverygrpc.DiscoveryRequest{TypeUrl: resp.GetTypeUrl(), VersionInfo: resp.GetVersionInfo(),
				ResponseNonce: resp.GetNonce(), ResourceNames: names[resp.GetTypeUrl()]}); err != nil {
				t.Fatal(err)
			}
			var eds []string
			var eps []string
			for _, a := range resp.GetResources() {
				switch resp.GetTypeUrl() {
				case xdsserver.ClusterType:
					c := &cluster.Cluster{}
					if err := a.UnmarshalTo(c); err != nil {
						t.Fatal(err)
					}
					clustered = clustered || c.GetName() == reviewsV1 && c.GetType() == cluster.Cluster_EDS
					if c.GetType() == cluster.Cluster_EDS {
						eds = append(eds, c.GetName())
					}
				case xdsserver.RouteType:
					rc := &route.RouteConfiguration{}
					if err := a.UnmarshalTo(rc); err != nil {
						t.Fatal(err)
					}
					for _, vh := range rc.GetVirtualHosts() {
						if slices.Contains(vh.GetDomains(), "reviews.default.svc.cluster.local") {
							routed = vh.GetRoutes()[0].GetRoute().GetCluster() == reviewsV1
						}
					}
				case xdsserver.EndpointType:
					cla := &endpoint.ClusterLoadAssignment{}
					if err := a.UnmarshalTo(cla); err != nil {
						t.Fatal(err)
					}
					if cla.GetClusterName() != reviewsV1 {
						continue
					}
					for _, l := range cla.GetEndpoints() {
						for _, e := range l.GetLbEndpoints() {
							sa := e.GetEndpoint().GetAddress().GetSocketAddress()
							eps = append(eps, sa.GetAddress()+":"+itoa(sa.GetPortValue()))
						}
					}
				}
			}
			if resp.GetTypeUrl() == xdsserver.ClusterType && !slices.Equal(eds, names[xdsserver.EndpointType]) {
				names[xdsserver.EndpointType] = eds
				if err := stream.Send(&discoverygrpc.DiscoveryRequest{TypeUrl: xdsserver.EndpointType, ResourceNames: eds}); err != nil {
					t.Fatal(err)
				}
			}
			if resp.GetTypeUrl() == xdsserver.EndpointType {
				slices.Sort(eps)
				if slices.Equal(eps, want) && routed && clustered {
					return
				}
			}
		}
	}
	recvEndpoints("10.1.0.5:9080")

	// A second pod turns ready: the new endpoint is pushed.
	deadline := time.Now().Add(10 * time.Second)
	for sliceWatches.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
	if _, err := kc.DiscoveryV1().EndpointSlices("default").Update(ctx, reviewsSlice("10.1.0.5", "10.1.0.6"), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	recvEndpoints("10.1.0.5:9080", "10.1.0.6:9080")
}

func itoa(n uint32) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}
