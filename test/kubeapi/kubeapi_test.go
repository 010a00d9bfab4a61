package kubeapi

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

var api *Server

func TestMain(m *testing.M) { os.Exit(Main(m, &api)) }

func TestBuildScriptPinsVersion(t *testing.T) {
	b, err := os.ReadFile("build.sh")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^K8S_VERSION=(\S+)$`).FindSubmatch(b)
	if m == nil || string(m[1]) != Version {
		t.Fatalf("build.sh builds %q, the tests want %s", m, Version)
	}
}

func TestServerVersion(t *testing.T) {
	v, err := api.Clientset(t).Discovery().ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	if v.GitVersion != Version {
		t.Fatalf("server is %s, want %s", v.GitVersion, Version)
	}
}

// TestUsersNeedRBAC: a certificate user and a ServiceAccount may do
// nothing until a Role is bound to them, then what the Role says.
func TestUsersNeedRBAC(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ns := api.Namespace(t, "rbac", nil)
	admin := api.Clientset(t)
	kc, err := clientcmd.BuildConfigFromFlags("", api.UserKubeconfig(t, "alice", "dev"))
	if err != nil {
		t.Fatal(err)
	}
	users := map[string]*rest.Config{
		"User alice":              api.UserConfig("alice", "dev"),
		"User alice (kubeconfig)": kc,
		"ServiceAccount reader":   api.ServiceAccountConfig(t, ns, "reader"),
	}
	subjects := []rbacv1.Subject{{Kind: "User", Name: "alice"}, {Kind: "ServiceAccount", Name: "reader", Namespace: ns}}
	list := func(cfg *rest.Config) error {
		_, err := kubernetes.NewForConfigOrDie(cfg).CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{})
		return err
	}
	for name, cfg := range users {
		if err := list(cfg); !apierrors.IsForbidden(err) {
			t.Errorf("%s lists ConfigMaps with no Role: %v, want Forbidden", name, err)
		}
	}
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "cm-reader", Namespace: ns},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"list"}}}}
	if _, err := admin.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "cm-reader", Namespace: ns},
		RoleRef: rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "cm-reader"}, Subjects: subjects}
	if _, err := admin.RbacV1().RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for name, cfg := range users {
		// RBAC's cache follows the binding within moments.
		deadline := time.Now().Add(10 * time.Second)
		for err := list(cfg); err != nil; err = list(cfg) {
			if time.Now().After(deadline) {
				t.Fatalf("%s lists ConfigMaps with the Role bound: %v", name, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: ns}}
		if _, err := kubernetes.NewForConfigOrDie(cfg).CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("%s creates a ConfigMap with a list-only Role: %v, want Forbidden", name, err)
		}
	}
}

// TestOutageExpiresWatches: after an Outage, a watch from a resource
// version before it is answered 410 Gone, and the write made during it is
// there.
func TestOutageExpiresWatches(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ns := api.Namespace(t, "outage", nil)
	cms := api.Clientset(t).CoreV1().ConfigMaps(ns)
	cm, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "c"}, Data: map[string]string{"v": "1"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	err = api.Outage(ctx, func(cfg *rest.Config) error {
		c := kubernetes.NewForConfigOrDie(cfg).CoreV1().ConfigMaps(ns)
		cm := cm.DeepCopy()
		cm.Data["v"] = "2"
		_, err := c.Update(ctx, cm, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := cms.Get(ctx, "c", metav1.GetOptions{})
	if err != nil || got.Data["v"] != "2" {
		t.Fatalf("after the outage: %v %v, want v=2", got.Data, err)
	}
	w, err := cms.Watch(ctx, metav1.ListOptions{ResourceVersion: cm.ResourceVersion})
	if err == nil {
		ev := <-w.ResultChan()
		w.Stop()
		if st, ok := ev.Object.(*metav1.Status); ok {
			err = apierrors.FromObject(st)
		} else {
			err = fmt.Errorf("event %s %T", ev.Type, ev.Object)
		}
	}
	if !apierrors.IsResourceExpired(err) && !apierrors.IsGone(err) {
		t.Fatalf("watch from before the outage: %v, want 410 Gone", err)
	}
}
