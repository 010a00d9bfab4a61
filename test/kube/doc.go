// Package kube tests weft's Kubernetes side against a real kube-apiserver
// and etcd (package test/kubeapi): weft install and uninstall, the sidecar
// injector as the API server calls it, discovery feeding real proxies,
// leader election and status, watches that expire. Each test is a user's
// action; they share one API server, each in its own namespaces.
package kube
