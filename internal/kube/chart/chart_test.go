package chart

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"

	"github.com/weft-mesh/weft/internal/config"
	"github.com/weft-mesh/weft/internal/dashboards"
	"github.com/weft-mesh/weft/manifests"
)

var update = flag.Bool("update", false, "rewrite the golden files")

var release = Release{Name: "weft", Namespace: "weft-system"}

func load(t *testing.T) *Chart {
	t.Helper()
	c, err := Load(manifests.Chart, manifests.ChartDir)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// objects are a rendering's documents, decoded strictly into client-go's
// typed objects.
type objects struct {
	namespaces      []corev1.Namespace
	serviceAccounts []corev1.ServiceAccount
	services        map[string]corev1.Service
	deployments     []appsv1.Deployment
	clusterRoles    []rbacv1.ClusterRole
	crBindings      []rbacv1.ClusterRoleBinding
	roles           []rbacv1.Role
	roleBindings    []rbacv1.RoleBinding
	webhooks        []admissionv1.MutatingWebhookConfiguration
	crds            []apiextensionsv1.CustomResourceDefinition
	configMaps      []corev1.ConfigMap
	istio           []*config.Object
}

// strict decodes y into out; an unknown or duplicated field is an error.
func strict[T any](t *testing.T, d Document, out *T) T {
	t.Helper()
	if err := yaml.UnmarshalStrict(d.YAML, out); err != nil {
		t.Fatalf("%s %s/%s (%s): %v", d.Kind, d.Namespace, d.Name, d.Source, err)
	}
	return *out
}

func decode(t *testing.T, docs []Document) objects {
	t.Helper()
	o := objects{services: map[string]corev1.Service{}}
	for _, d := range docs {
		switch d.APIVersion + " " + d.Kind {
		case "v1 Namespace":
			o.namespaces = append(o.namespaces, strict(t, d, &corev1.Namespace{}))
		case "v1 ServiceAccount":
			o.serviceAccounts = append(o.serviceAccounts, strict(t, d, &corev1.ServiceAccount{}))
		case "v1 ConfigMap":
			o.configMaps = append(o.configMaps, strict(t, d, &corev1.ConfigMap{}))
		case "v1 Service":
			o.services[d.Name] = strict(t, d, &corev1.Service{})
		case "apps/v1 Deployment":
			o.deployments = append(o.deployments, strict(t, d, &appsv1.Deployment{}))
		case "rbac.authorization.k8s.io/v1 ClusterRole":
			o.clusterRoles = append(o.clusterRoles, strict(t, d, &rbacv1.ClusterRole{}))
		case "rbac.authorization.k8s.io/v1 ClusterRoleBinding":
			o.crBindings = append(o.crBindings, strict(t, d, &rbacv1.ClusterRoleBinding{}))
		case "rbac.authorization.k8s.io/v1 Role":
			o.roles = append(o.roles, strict(t, d, &rbacv1.Role{}))
		case "rbac.authorization.k8s.io/v1 RoleBinding":
			o.roleBindings = append(o.roleBindings, strict(t, d, &rbacv1.RoleBinding{}))
		case "admissionregistration.k8s.io/v1 MutatingWebhookConfiguration":
			o.webhooks = append(o.webhooks, strict(t, d, &admissionv1.MutatingWebhookConfiguration{}))
		case "apiextensions.k8s.io/v1 CustomResourceDefinition":
			o.crds = append(o.crds, strict(t, d, &apiextensionsv1.CustomResourceDefinition{}))
		default:
			if !strings.HasSuffix(strings.Split(d.APIVersion, "/")[0], ".istio.io") {
				t.Fatalf("%s %s (%s): no typed object to check it against", d.APIVersion, d.Kind, d.Source)
			}
			objs, err := config.ParseWith(d.Source, d.YAML, config.ParseOptions{})
			if err != nil {
				t.Fatalf("%s %s: %v", d.Kind, d.Name, err)
			}
			o.istio = append(o.istio, objs...)
		}
	}
	return o
}

// TestRenderGolden renders every profile, compares it with
// testdata/PROFILE.golden.yaml (go test -update rewrites them), decodes
// every object strictly and checks the names and ports other parts of weft
// rely on.
func TestRenderGolden(t *testing.T) {
	c := load(t)
	if got, want := c.Profiles(), []string{"default", "demo", "minimal"}; !slices.Equal(got, want) {
		t.Fatalf("profiles %v, want %v", got, want)
	}
	for _, profile := range c.Profiles() {
		t.Run(profile, func(t *testing.T) {
			docs, err := c.Render(Options{Profile: profile, Release: release})
			if err != nil {
				t.Fatal(err)
			}
			got := YAML(docs)
			golden := filepath.Join("testdata", profile+".golden.yaml")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("rendering differs from %s (-want +got):\n%s", golden, diff)
			}
			checkContract(t, profile, decode(t, docs))
		})
	}
}

func checkContract(t *testing.T, profile string, o objects) {
	checkDashboards(t, o.configMaps)
	injector, console := profile != "minimal", profile != "minimal"
	if len(o.crds) != len(config.KindSchemas()) {
		t.Errorf("%d CRDs, want one per kind (%d)", len(o.crds), len(config.KindSchemas()))
	}
	if len(o.namespaces) == 0 || o.namespaces[0].Name != "weft-system" || o.namespaces[0].Labels["istio-injection"] != "disabled" {
		t.Errorf("namespaces %v: want weft-system first, labelled istio-injection=disabled", o.namespaces)
	}
	if len(o.serviceAccounts) != 1 || o.serviceAccounts[0].Name != "weftd" || o.serviceAccounts[0].Namespace != "weft-system" {
		t.Errorf("service accounts %v, want weft-system/weftd", o.serviceAccounts)
	}
	checkDeployment(t, profile, o.deployments, injector, console)
	checkService(t, o.services["weftd"])
	checkRBAC(t, o)
	if !injector {
		if len(o.webhooks) != 0 {
			t.Errorf("profile %s has %d webhook configurations, want none", profile, len(o.webhooks))
		}
	} else {
		checkWebhook(t, o.webhooks)
	}
	cs, hasConsoleService := o.services["weft-console"]
	if wantNodePort := profile == "demo"; hasConsoleService != wantNodePort {
		t.Errorf("profile %s: console Service %v, want %v", profile, hasConsoleService, wantNodePort)
	} else if wantNodePort && (cs.Spec.Type != corev1.ServiceTypeNodePort || cs.Spec.Ports[0].Port != 20001 || cs.Spec.Ports[0].NodePort != 30001) {
		t.Errorf("console Service %+v: want NodePort 30001 → 20001", cs.Spec)
	}
	wantTelemetry := 0
	if profile == "demo" {
		wantTelemetry = 1
	}
	if len(o.istio) != wantTelemetry {
		t.Fatalf("profile %s: %d Istio objects, want %d", profile, len(o.istio), wantTelemetry)
	}
	if wantTelemetry == 1 {
		tel := o.istio[0]
		if tel.Kind != config.KindTelemetry || tel.Namespace != "istio-system" || !strings.Contains(fmt.Sprint(tel.Spec), "random_sampling_percentage:{value:100}") {
			t.Errorf("demo Telemetry %s/%s %v: want mesh-wide 100%% sampling in istio-system", tel.Namespace, tel.Name, tel.Spec)
		}
	}
}

func checkDeployment(t *testing.T, profile string, deps []appsv1.Deployment, injector, console bool) {
	t.Helper()
	if len(deps) != 1 {
		t.Fatalf("%d Deployments, want weftd", len(deps))
	}
	d := deps[0]
	if d.Name != "weftd" || d.Namespace != "weft-system" || d.Labels["app"] != "weftd" || d.Spec.Template.Labels["app"] != "weftd" ||
		d.Spec.Selector.MatchLabels["app"] != "weftd" || d.Spec.Template.Spec.ServiceAccountName != "weftd" {
		t.Errorf("Deployment %s/%s: want weft-system/weftd with app=weftd and service account weftd", d.Namespace, d.Name)
	}
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 {
		t.Errorf("replicas %v, want 1", d.Spec.Replicas)
	}
	if d.Spec.Template.Labels["sidecar.istio.io/inject"] != "false" {
		t.Error("the control plane's pods must not get a sidecar")
	}
	ct := d.Spec.Template.Spec.Containers[0]
	if ct.Image != "ghcr.io/weft-mesh/weft:0.1.0" {
		t.Errorf("image %s, want ghcr.io/weft-mesh/weft:0.1.0", ct.Image)
	}
	if ct.ReadinessProbe == nil || ct.ReadinessProbe.HTTPGet == nil || ct.ReadinessProbe.HTTPGet.Port.IntValue() != 15014 {
		t.Errorf("readiness probe %+v, want GET :15014", ct.ReadinessProbe)
	}
	args := strings.Join(ct.Args, " ")
	want := []string{"control-plane --kubernetes", "--xds-address=:15010", "--secure-xds-address=:15012", "--http-address=:15014",
		"--otlp-grpc-address=:4317", "--otlp-http-address=:4318"}
	if injector {
		want = append(want, "--webhook-address=:15017", "--injection-image="+ct.Image)
	}
	if console {
		// The console reached from outside the pod asks for a login.
		want = append(want, "--console-address=:20001", "--console-auth=token")
	} else {
		want = append(want, "--console-address=off")
	}
	if profile == "demo" {
		want = append(want, "--log-level=debug")
	}
	for _, w := range want {
		if !strings.Contains(args, w) {
			t.Errorf("args %q lack %q", args, w)
		}
	}
	if !injector && strings.Contains(args, "webhook") {
		t.Errorf("args %q: no webhook without the injector", args)
	}
}

func checkService(t *testing.T, s corev1.Service) {
	t.Helper()
	if s.Namespace != "weft-system" || s.Spec.Selector["app"] != "weftd" {
		t.Errorf("Service weftd %s selector %v, want weft-system and app=weftd", s.Namespace, s.Spec.Selector)
	}
	want := map[string][2]int{"grpc-xds": {15010, 15010}, "https-xds": {15012, 15012}, "http-monitoring": {15014, 15014},
		"https-webhook": {443, 15017}, "http-console": {20001, 20001}, "grpc-otlp": {4317, 4317}, "http-otlp": {4318, 4318}}
	got := map[string][2]int{}
	for _, p := range s.Spec.Ports {
		got[p.Name] = [2]int{int(p.Port), p.TargetPort.IntValue()}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Service weftd ports (-want +got):\n%s", diff)
	}
}

// allows reports whether rules grant verb on group/resource.
func allows(rules []rbacv1.PolicyRule, group, resource, verb string) bool {
	for _, r := range rules {
		if slices.Contains(r.APIGroups, group) && (slices.Contains(r.Resources, resource) || slices.Contains(r.Resources, "*") ||
			(strings.HasSuffix(resource, "/status") && slices.Contains(r.Resources, "*/status"))) && slices.Contains(r.Verbs, verb) {
			return true
		}
	}
	return false
}

func checkRBAC(t *testing.T, o objects) {
	t.Helper()
	if len(o.clusterRoles) != 1 || len(o.roles) != 1 || len(o.crBindings) != 1 || len(o.roleBindings) != 1 {
		t.Fatalf("%d ClusterRoles, %d Roles, %d bindings, %d role bindings; want one each", len(o.clusterRoles), len(o.roles), len(o.crBindings), len(o.roleBindings))
	}
	cr := o.clusterRoles[0].Rules
	type grant struct{ group, resource, verb string }
	var want []grant
	for _, r := range []string{"namespaces", "services", "pods", "nodes"} {
		want = append(want, grant{"", r, "watch"}, grant{"", r, "list"})
	}
	want = append(want, grant{"discovery.k8s.io", "endpointslices", "watch"}, grant{"", "configmaps", "create"}, grant{"", "configmaps", "update"}, grant{"authentication.k8s.io", "tokenreviews", "create"},
		grant{"authorization.k8s.io", "subjectaccessreviews", "create"},
		grant{"admissionregistration.k8s.io", "mutatingwebhookconfigurations", "patch"})
	for _, k := range config.KindSchemas() {
		want = append(want, grant{k.Group, k.Plural, "watch"}, grant{k.Group, k.Plural + "/status", "patch"})
	}
	for _, g := range want {
		if !allows(cr, g.group, g.resource, g.verb) {
			t.Errorf("ClusterRole weftd does not allow %s on %s in group %q", g.verb, g.resource, g.group)
		}
	}
	role := o.roles[0]
	for _, g := range []grant{{"", "secrets", "create"}, {"", "secrets", "get"}, {"coordination.k8s.io", "leases", "update"}} {
		if role.Namespace != "weft-system" || !allows(role.Rules, g.group, g.resource, g.verb) {
			t.Errorf("Role %s/%s does not allow %s on %s", role.Namespace, role.Name, g.verb, g.resource)
		}
	}
	for _, b := range []struct {
		ref      rbacv1.RoleRef
		subjects []rbacv1.Subject
	}{{o.crBindings[0].RoleRef, o.crBindings[0].Subjects}, {o.roleBindings[0].RoleRef, o.roleBindings[0].Subjects}} {
		if b.ref.Name != "weftd" || len(b.subjects) != 1 || b.subjects[0].Name != "weftd" || b.subjects[0].Namespace != "weft-system" {
			t.Errorf("binding %+v %+v: want weftd bound to weft-system/weftd", b.ref, b.subjects)
		}
	}
}

func checkWebhook(t *testing.T, mwcs []admissionv1.MutatingWebhookConfiguration) {
	t.Helper()
	if len(mwcs) != 1 || mwcs[0].Name != "weft-sidecar-injector" {
		t.Fatalf("webhook configurations %v, want weft-sidecar-injector", mwcs)
	}
	hooks := mwcs[0].Webhooks
	if len(hooks) != 2 || hooks[0].Name != "sidecar-injector.weft.io" {
		t.Fatalf("webhooks %d, want sidecar-injector.weft.io and one for labelled pods", len(hooks))
	}
	for _, h := range hooks {
		svc := h.ClientConfig.Service
		if svc == nil || svc.Name != "weftd" || svc.Namespace != "weft-system" || svc.Path == nil || *svc.Path != "/inject" || svc.Port == nil || *svc.Port != 443 {
			t.Errorf("webhook %s: client config %+v, want weftd.weft-system:443/inject", h.Name, h.ClientConfig)
		}
		if len(h.ClientConfig.CABundle) != 0 {
			t.Errorf("webhook %s: caBundle is set; the control plane fills it", h.Name)
		}
		if h.SideEffects == nil || *h.SideEffects != admissionv1.SideEffectClassNone || !slices.Equal(h.AdmissionReviewVersions, []string{"v1"}) ||
			h.FailurePolicy == nil || *h.FailurePolicy != admissionv1.Fail {
			t.Errorf("webhook %s: sideEffects %v, versions %v, failurePolicy %v", h.Name, h.SideEffects, h.AdmissionReviewVersions, h.FailurePolicy)
		}
	}
	if hooks[0].NamespaceSelector.MatchLabels["istio-injection"] != "enabled" {
		t.Errorf("webhook %s: namespaceSelector %v, want istio-injection=enabled", hooks[0].Name, hooks[0].NamespaceSelector)
	}
	if hooks[1].ObjectSelector.MatchLabels["sidecar.istio.io/inject"] != "true" {
		t.Errorf("webhook %s: objectSelector %v, want sidecar.istio.io/inject=true", hooks[1].Name, hooks[1].ObjectSelector)
	}
}

func TestSet(t *testing.T) {
	c := load(t)
	tests := []struct {
		name string
		set  []string
		want string // in the rendered Deployment
		err  error
	}{
		{"replicas", []string{"controlPlane.replicas=3"}, "replicas: 3\n", nil},
		{"image tag", []string{"image.tag=dev"}, "image: \"ghcr.io/weft-mesh/weft:dev\"", nil},
		{"numeric tag stays text", []string{"image.tag=123"}, "image: \"ghcr.io/weft-mesh/weft:123\"", nil},
		{"free-form map", []string{"controlPlane.nodeSelector.disk=ssd"}, "nodeSelector:\n        disk: ssd", nil},
		{"unknown key", []string{"controlPlane.replcas=3"}, "", ErrBadSet},
		{"not a number", []string{"controlPlane.replicas=many"}, "", ErrBadSet},
		{"not a bool", []string{"injector.enabled=yes"}, "", ErrBadSet},
		{"no value", []string{"controlPlane.replicas"}, "", ErrBadSet},
		{"list", []string{"controlPlane.extraArgs[0]=x"}, "", ErrBadSet},
		{"whole map", []string{"image=x"}, "", ErrBadSet},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			docs, err := c.Render(Options{Set: tt.set, Release: release})
			if !errors.Is(err, tt.err) {
				t.Fatalf("error %v, want %v", err, tt.err)
			}
			if err != nil {
				return
			}
			for _, d := range docs {
				if d.Kind == "Deployment" && !strings.Contains(string(d.YAML), tt.want) {
					t.Errorf("Deployment lacks %q:\n%s", tt.want, d.YAML)
				}
			}
		})
	}
	if _, err := c.Render(Options{Profile: "tiny", Release: release}); !errors.Is(err, ErrUnknownProfile) ||
		!strings.Contains(err.Error(), "default, demo, minimal") {
		t.Errorf("unknown profile: %v, want ErrUnknownProfile listing the profiles", err)
	}
}

func TestFuncsAsHelm(t *testing.T) {
	tests := []struct{ got, want string }{
		{quote("a", 1, nil, true), `"a" "1" "true"`},
		{fmt.Sprint(dflt("d", "")), "d"},
		{fmt.Sprint(dflt("d", 0)), "d"},
		{fmt.Sprint(dflt("d", []any{})), "d"},
		{fmt.Sprint(dflt("d", "v")), "v"},
		{fmt.Sprint(dflt("d")), "d"},
		{toYAML(map[string]any{"b": 1, "a": []any{"x"}}), "a:\n- x\nb: 1"},
		{indent(2, "a\nb"), "  a\n  b"},
	}
	for i, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("case %d: %q, want %q", i, tt.got, tt.want)
		}
	}
}

// checkDashboards: ConfigMap weft-grafana-dashboards carries every dashboard
// of `weft dashboards`, byte for byte, labelled for Grafana's sidecar.
func checkDashboards(t *testing.T, cms []corev1.ConfigMap) {
	t.Helper()
	all, err := dashboards.Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, cm := range cms {
		if cm.Name != "weft-grafana-dashboards" {
			continue
		}
		if cm.Labels["grafana_dashboard"] != "1" {
			t.Errorf("ConfigMap %s lacks label grafana_dashboard=1: %v", cm.Name, cm.Labels)
		}
		if len(cm.Data) != len(all) {
			t.Errorf("ConfigMap %s holds %d dashboards, want %d", cm.Name, len(cm.Data), len(all))
		}
		for _, d := range all {
			if got := cm.Data[d.Name+".json"]; got != strings.TrimSuffix(string(d.JSON), "\n") {
				t.Errorf("ConfigMap %s: %s.json differs from the dashboard (%d bytes, want %d)", cm.Name, d.Name, len(got), len(d.JSON))
			}
		}
		return
	}
	t.Error("no ConfigMap weft-grafana-dashboards")
}

// TestInjectorURL: with injector.url both webhooks call that URL (a control
// plane outside the cluster) instead of Service weftd.
func TestInjectorURL(t *testing.T) {
	const url = "https://203.0.113.7:15017/inject"
	docs, err := load(t).Render(Options{Set: []string{"injector.url=" + url}, Release: release})
	if err != nil {
		t.Fatal(err)
	}
	hooks := decode(t, docs).webhooks
	if len(hooks) != 1 || len(hooks[0].Webhooks) != 2 {
		t.Fatalf("want one configuration with two webhooks, got %+v", hooks)
	}
	for _, h := range hooks[0].Webhooks {
		if h.ClientConfig.URL == nil || *h.ClientConfig.URL != url || h.ClientConfig.Service != nil {
			t.Errorf("webhook %s: clientConfig %+v, want url %s and no service", h.Name, h.ClientConfig, url)
		}
	}
}
