package kube

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// reviewsMesh routes jason to v1 and everyone else to v2.
const reviewsMesh = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - match: [{headers: {end-user: {exact: jason}}}]
    route: [{destination: {host: reviews, subset: v1}}]
  - route: [{destination: {host: reviews, subset: v2}}]
`

// cluster is the test's pods: in the API server as Pods, a Service and an
// EndpointSlice (what kubelet and the endpoint-slice controller would
// write), and on the host as network namespaces running the apps.
type cluster struct {
	t   *testing.T
	net *podNet
	ns  string
	cs  kubernetes.Interface
}

// addPod creates Pod NAME (labels, .i) with its status as the kubelet would
// write it, and runs the echo app answering NAME in its namespace.
func (c *cluster) addPod(ctx context.Context, name string, i int, labels map[string]string, app bool) string {
	t := c.t
	netns := c.net.pod(name, i)
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:1"}}, NodeName: "node-1"}}
	p, err := c.cs.CoreV1().Pods(c.ns).Create(ctx, p, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: c.net.ip(i), PodIPs: []corev1.PodIP{{IP: c.net.ip(i)}},
		HostIP: c.net.ip(1), Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}}
	if _, err := c.cs.CoreV1().Pods(c.ns).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if app {
		self, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		startCmd(t, c.net.command(netns, 0, []string{echoEnv + "=" + c.net.ip(i) + ":9080 " + name}, self))
	}
	return netns
}

// endpoints writes the reviews EndpointSlice with the pods at these
// addresses (.i, name).
func (c *cluster) endpoints(ctx context.Context, cs kubernetes.Interface, pods map[int]string) error {
	ready, port, pname := true, int32(9080), "http"
	sl := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "reviews-abcde", Labels: map[string]string{discoveryv1.LabelServiceName: "reviews"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: &pname, Port: &port}},
	}
	for i, name := range pods {
		sl.Endpoints = append(sl.Endpoints, discoveryv1.Endpoint{Addresses: []string{c.net.ip(i)},
			Conditions: discoveryv1.EndpointConditions{Ready: &ready},
			TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: c.ns, Name: name}})
	}
	api := cs.DiscoveryV1().EndpointSlices(c.ns)
	cur, err := api.Get(ctx, sl.Name, metav1.GetOptions{})
	if err != nil {
		_, err = api.Create(ctx, sl, metav1.CreateOptions{})
		return err
	}
	cur.Endpoints = sl.Endpoints
	_, err = api.Update(ctx, cur, metav1.UpdateOptions{})
	return err
}

// TestDiscoveryToProxies: what the API server holds (Services,
// EndpointSlices, Pods, VirtualServices, DestinationRules) reaches a real
// sidecar with transparent capture, which routes an unmodified client's
// requests by it; a scale-down, a routing change and an API server outage
// during which the cluster changed are all followed. Not parallel: the
// outage stops the package's API server.
func TestDiscoveryToProxies(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	istioCRDs(t)
	pn := newPodNet(t)
	sel := "weft-test=discovery-" + pn.id
	ns := api.Namespace(t, "discovery", map[string]string{"weft-test": "discovery-" + pn.id})
	cs := api.Clientset(t)
	c := &cluster{t: t, net: pn, ns: ns, cs: cs}

	svc, err := cs.CoreV1().Services(ns).Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "reviews"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "reviews"},
			Ports: []corev1.ServicePort{{Name: "http", Port: 9080, TargetPort: intstr.FromInt32(9080)}}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c.addPod(ctx, "reviews-v1", 11, map[string]string{"app": "reviews", "version": "v1"}, true)
	c.addPod(ctx, "reviews-v2", 12, map[string]string{"app": "reviews", "version": "v2"}, true)
	client := c.addPod(ctx, "client", 13, map[string]string{"app": "client"}, false)
	both := map[int]string{11: "reviews-v1", 12: "reviews-v2"}
	if err := c.endpoints(ctx, cs, both); err != nil {
		t.Fatal(err)
	}

	xds := pn.ip(1) + ":15010"
	startControlPlane(t, pn.ip(1), ns, nil, "--kube-discovery-selector", sel, "--xds-address", xds)
	if out, err := pn.run(client, 0, weftBin, "iptables", "-p", "15001", "-z", "15006", "-u", "1337", "-g", "1337",
		"-m", "REDIRECT", "-i", "*", "-x", "", "-b", "*", "-d", "15090,15021,15020"); err != nil {
		t.Fatalf("weft iptables: %v\n%s", err, out)
	}
	startCmd(t, pn.command(client, 1337, []string{"POD_NAME=client", "POD_NAMESPACE=" + ns, "INSTANCE_IP=" + pn.ip(13),
		"SERVICE_ACCOUNT=default"}, weftBin, "proxy", "--kubernetes", "--xds-address", xds, "--otlp-endpoint", "off",
		"--labels", "app=client", "--log-level", "debug"))

	host := "reviews." + ns + ".svc.cluster.local"
	get := func(headers ...string) (string, error) {
		args := []string{"curl", "-sS", "--max-time", "3", "-H", "Host: " + host}
		for _, h := range headers {
			args = append(args, "-H", h)
		}
		return pn.run(client, 1000, append(args, "http://"+svc.Spec.ClusterIP+":9080/")...)
	}
	// Requests reach both versions (round robin over the slice's pods).
	seen := map[string]bool{}
	eventually(t, 30*time.Second, func() error {
		out, err := get()
		if err == nil && strings.HasPrefix(out, "reviews-v") {
			seen[out] = true
		}
		if !seen["reviews-v1"] || !seen["reviews-v2"] {
			return fmt.Errorf("answers so far %v (last %q %v)", seen, out, err)
		}
		return nil
	})

	// Scale-down: v2 leaves the EndpointSlice; the proxy drops it.
	start := time.Now()
	if err := c.endpoints(ctx, cs, map[int]string{11: "reviews-v1"}); err != nil {
		t.Fatal(err)
	}
	clusterName := "outbound|9080||" + host
	eventually(t, 20*time.Second, func() error {
		out, err := pn.run(client, 0, "curl", "-sS", "--max-time", "2", "http://"+pn.ip(13)+":15000/clusters")
		if err != nil || !strings.Contains(out, clusterName+"::"+pn.ip(11)) || strings.Contains(out, clusterName+"::"+pn.ip(12)) {
			return fmt.Errorf("the proxy's endpoints of %s are not v1 only (%v):\n%s", clusterName, err, grep(out, clusterName))
		}
		return nil
	})
	t.Logf("scale-down reached the proxy in %s", time.Since(start).Round(time.Millisecond))
	for range 5 {
		if out, err := get(); out != "reviews-v1" {
			t.Fatalf("after the scale-down: %q %v, want reviews-v1", out, err)
		}
	}

	// Istio config applied to the API server routes the requests.
	if err := c.endpoints(ctx, cs, both); err != nil {
		t.Fatal(err)
	}
	dc := dynamicClient(t)
	if err := applyYAML(ctx, dc, ns, []byte(reviewsMesh)); err != nil {
		t.Fatal(err)
	}
	wantAnswer := func(want string, headers ...string) func() error {
		return func() error {
			for range 4 {
				if out, err := get(headers...); out != want {
					return fmt.Errorf("got %q (%v), want %q", out, err, want)
				}
			}
			return nil
		}
	}
	eventually(t, 30*time.Second, wantAnswer("reviews-v2"))
	eventually(t, 10*time.Second, wantAnswer("reviews-v1", "end-user: jason"))
	// The status weft writes is readable with the API.
	vsGVR := gvrOf["VirtualService"]
	eventually(t, 30*time.Second, func() error {
		u, err := dc.Resource(vsGVR).Namespace(ns).Get(ctx, "reviews", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if !conditionTrue(u, "Reconciled") {
			return fmt.Errorf("VirtualService reviews: status %v, want Reconciled True", u.Object["status"])
		}
		return nil
	})
	// A VirtualService weft refuses: its status says why, and the routes stay.
	bad := "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: broken}\nspec:\n  hosts: [reviews]\n  http:\n  - route: [{destination: {host: reviews, subset: v1}, weight: -5}]\n"
	if err := applyYAML(ctx, dc, ns, []byte(bad)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, func() error {
		return wantCondition(ctx, dc, vsGVR, ns, "broken", "False", "Invalid", "weight")
	})
	if err := wantAnswer("reviews-v1", "end-user: jason")(); err != nil {
		t.Errorf("after a refused VirtualService: %v", err)
	}

	// An outage of the API server during which the cluster changes: the
	// control plane's watches resume from an expired resource version (410
	// Gone), it lists again and the proxy gets what changed meanwhile.
	err = api.Outage(ctx, func(cfg *rest.Config) error {
		cs2, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			return err
		}
		if err := c.endpoints(ctx, cs2, map[int]string{12: "reviews-v2"}); err != nil {
			return fmt.Errorf("scaling v1 down during the outage: %w", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// jason's route is to v1, which is gone: no healthy upstream.
	eventually(t, 60*time.Second, func() error {
		out, err := pn.run(client, 1000, "curl", "-sS", "--max-time", "3", "-o", "/dev/null", "-w", "%{http_code}",
			"-H", "Host: "+host, "-H", "end-user: jason", "http://"+svc.Spec.ClusterIP+":9080/")
		if out != "503" {
			return fmt.Errorf("jason after v1 left during the outage: %q %v, want 503", out, err)
		}
		return nil
	})
	if err := wantAnswer("reviews-v2")(); err != nil {
		t.Errorf("after the outage: %v", err)
	}
}

// wantCondition checks an Istio object's Reconciled condition: its status,
// reason and a word of its message.
func wantCondition(ctx context.Context, dc dynamic.Interface, gvr schema.GroupVersionResource, ns, name, status, reason, inMessage string) error {
	u, err := dc.Resource(gvr).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] != "Reconciled" {
			continue
		}
		if m["status"] == status && m["reason"] == reason && strings.Contains(fmt.Sprint(m["message"]), inMessage) {
			return nil
		}
	}
	return fmt.Errorf("%s %s/%s: status %v, want Reconciled %s (%s) mentioning %q", u.GetKind(), ns, name, u.Object["status"], status, reason, inMessage)
}

// grep returns the lines of s that contain sub.
func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
