package config

import networking "istio.io/api/networking/v1alpha3"

// GRPCIgnored is a field of a VirtualService's http route that a proxyless
// gRPC client (grpc-go's xDS client) does not honour, and what happens
// instead.
type GRPCIgnored struct {
	Field, Reason string
}

// grpcIgnored lists the fields, each with the test that the route sets it.
var grpcIgnored = []struct {
	GRPCIgnored
	set func(*networking.HTTPRoute) bool
}{
	{GRPCIgnored{"mirror", "proxyless gRPC clients do not mirror; ignored for them"}, func(hr *networking.HTTPRoute) bool {
		return hr.GetMirror() != nil || len(hr.GetMirrors()) > 0
	}},
	{GRPCIgnored{"rewrite", "proxyless gRPC clients do not rewrite; ignored for them"}, func(hr *networking.HTTPRoute) bool { return hr.GetRewrite() != nil }},
	{GRPCIgnored{"corsPolicy", "proxyless gRPC clients have no CORS filter; ignored for them"}, func(hr *networking.HTTPRoute) bool { return hr.GetCorsPolicy() != nil }},
	{GRPCIgnored{"headers", "proxyless gRPC clients do not add or remove headers; ignored for them"}, func(hr *networking.HTTPRoute) bool { return hr.GetHeaders() != nil }},
	{GRPCIgnored{"redirect", "proxyless gRPC clients fail calls that match a redirect (UNAVAILABLE)"}, func(hr *networking.HTTPRoute) bool { return hr.GetRedirect() != nil }},
	{GRPCIgnored{"directResponse", "proxyless gRPC clients fail calls that match a direct response (UNAVAILABLE)"}, func(hr *networking.HTTPRoute) bool {
		return hr.GetDirectResponse() != nil
	}},
}

// GRPCIgnoredFields returns what of hr a proxyless gRPC client ignores.
func GRPCIgnoredFields(hr *networking.HTTPRoute) []GRPCIgnored {
	var out []GRPCIgnored
	for _, ig := range grpcIgnored {
		if ig.set(hr) {
			out = append(out, ig.GRPCIgnored)
		}
	}
	return out
}
