// Package samples holds weft's own sample configuration, under Istio's file
// names (samples/bookinfo/networking/destination-rule-all.yaml, …), so that
// the README's tour, the docs and `weft demo`'s hints work from a clone of
// the repository. Its tests check that every sample parses as weft config
// and, where Istio's reference copy is present beside the repository
// (../shared/istio-samples), that it says exactly what Istio's does.
package samples
