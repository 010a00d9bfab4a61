package chart

import "sort"

// installOrder is the order in which kinds are applied (Helm's install
// order for the kinds the chart has); kinds not listed, such as Istio's
// custom resources, come last. Uninstall goes in reverse.
var installOrder = []string{
	"CustomResourceDefinition",
	"Namespace",
	"ServiceAccount",
	"Secret",
	"ConfigMap",
	"ClusterRole",
	"ClusterRoleBinding",
	"Role",
	"RoleBinding",
	"Service",
	"Deployment",
	"MutatingWebhookConfiguration",
}

// Order sorts docs in install order, keeping the chart's order within a kind.
func Order(docs []Document) {
	rank := func(kind string) int {
		for i, k := range installOrder {
			if k == kind {
				return i
			}
		}
		return len(installOrder)
	}
	sort.SliceStable(docs, func(i, j int) bool { return rank(docs[i].Kind) < rank(docs[j].Kind) })
}
