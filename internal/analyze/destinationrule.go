package analyze

import (
	networking "istio.io/api/networking/v1alpha3"

	"github.com/weft-mesh/weft/internal/config"
	"github.com/weft-mesh/weft/internal/controlplane/registry"
)

// destinationRule reports subsets whose labels select no workload of the
// rule's service (IST0173): requests routed there fail with 503 UH. Rules
// for hosts the registry does not know are not checked.
func (a *analyzer) destinationRule(o *config.Object) {
	dr, ok := o.Spec.(*networking.DestinationRule)
	if !ok {
		return
	}
	svc, _ := a.hosts.lookup(dr.GetHost(), o.Namespace)
	if svc == nil {
		return
	}
	for _, ss := range dr.GetSubsets() {
		if !selectsAny(svc, ss.GetLabels()) {
			a.report(newMessage(DestinationRuleSubsetNotSelectPods, o,
				"The Subset %s defined in the DestinationRule does not select any pods. Which may lead to 503 UH (NoHealthyUpstream).",
				ss.GetName()))
		}
	}
}

// selectsAny reports whether an endpoint of svc has every label of sel.
func selectsAny(svc *registry.Service, sel map[string]string) bool {
	for _, ep := range svc.Endpoints {
		if registry.Matches(sel, ep.Labels) {
			return true
		}
	}
	return false
}
