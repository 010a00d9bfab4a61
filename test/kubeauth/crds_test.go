package kubeauth

import (
	"context"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensions "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weft-mesh/weft/internal/kube/crdgen"
)

// installCRDs creates Istio's CRDs (weft's, as `weft install` does) and
// waits until the API server serves them: the control plane's discovery
// waits for them.
func installCRDs(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cs, err := apiextensions.NewForConfig(api.Config)
	if err != nil {
		t.Fatal(err)
	}
	crds := crdgen.CRDs()
	for i := range crds {
		if _, err := cs.ApiextensionsV1().CustomResourceDefinitions().Create(ctx, &crds[i], metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("creating CRD %s: %v", crds[i].Name, err)
		}
	}
	for _, c := range crds {
		for {
			got, err := cs.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, c.Name, metav1.GetOptions{})
			if err == nil && established(got) {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("CRD %s not established: %v", c.Name, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

func established(c *apiextensionsv1.CustomResourceDefinition) bool {
	for _, cond := range c.Status.Conditions {
		if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
			return true
		}
	}
	return false
}
