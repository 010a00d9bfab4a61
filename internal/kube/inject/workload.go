package inject

import (
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// WorkloadName returns the name of the workload that owns a pod, as Istio
// derives it: a Deployment's name for a ReplicaSet's pod (without the
// pod-template-hash suffix), the controller's name otherwise, else the
// pod's name or generateName.
func WorkloadName(pod *corev1.Pod) string {
	if owner := metav1.GetControllerOf(pod); owner != nil {
		if hash := pod.Labels[appsv1.DefaultDeploymentUniqueLabelKey]; owner.Kind == "ReplicaSet" && hash != "" {
			if name, ok := strings.CutSuffix(owner.Name, "-"+hash); ok {
				return name
			}
		}
		return owner.Name
	}
	if pod.Name != "" {
		return pod.Name
	}
	return strings.TrimSuffix(pod.GenerateName, "-")
}
