package inject

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestWorkloadName(t *testing.T) {
	owner := func(kind, name string) []metav1.OwnerReference {
		return []metav1.OwnerReference{{Kind: kind, Name: name, Controller: ptr(true)}}
	}
	tests := []struct {
		name string
		pod  corev1.Pod
		want string
	}{
		{"deployment", corev1.Pod{ObjectMeta: metav1.ObjectMeta{GenerateName: "reviews-v1-abc-", OwnerReferences: owner("ReplicaSet", "reviews-v1-abc"),
			Labels: map[string]string{"pod-template-hash": "abc"}}}, "reviews-v1"},
		{"bare replica set", corev1.Pod{ObjectMeta: metav1.ObjectMeta{OwnerReferences: owner("ReplicaSet", "frontend")}}, "frontend"},
		{"stateful set", corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-0", OwnerReferences: owner("StatefulSet", "web")}}, "web"},
		{"bare pod", corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "sleep"}}, "sleep"},
		{"generated name", corev1.Pod{ObjectMeta: metav1.ObjectMeta{GenerateName: "debug-"}}, "debug"},
	}
	for _, tt := range tests {
		if got := WorkloadName(&tt.pod); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}
