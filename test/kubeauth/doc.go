// Package kubeauth tests who may change the mesh through weft's API and
// console on Kubernetes: a real `weft control-plane --kubernetes` against a
// real kube-apiserver (test/kubeapi), whose TokenReviews and
// SubjectAccessReviews decide, from the users' RBAC.
package kubeauth
