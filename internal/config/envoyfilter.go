package config

import (
	"encoding/json"
	"fmt"
	"strings"

	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	localrl "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/local_ratelimit/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
	networking "istio.io/api/networking/v1alpha3"
)

// LocalRateLimitFilter is the one Envoy filter weft's EnvoyFilter support
// inserts: Istio's documented way to rate limit locally.
const LocalRateLimitFilter = "envoy.filters.http.local_ratelimit"

const localRateLimitType = "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit"

// RateLimitPatch is one EnvoyFilter patch weft applies: the local rate limit
// filter on the HTTP connection managers (Route == false), or a per-route /
// per-virtual-host config and descriptors (Route == true).
type RateLimitPatch struct {
	Context networking.EnvoyFilter_PatchContext
	// Port limits the patch to listeners or route configs of this port (0: any).
	Port uint32
	// Route: the patch is for routes (HTTP_ROUTE) or virtual hosts (VIRTUAL_HOST).
	Route     bool
	VHostName string // match.routeConfiguration.vhost.name ("" any)
	RouteName string // match.routeConfiguration.vhost.route.name ("" any)
	// Config is the LocalRateLimit (nil for a route patch that only adds rate_limits).
	Config *localrl.LocalRateLimit
	// RateLimits are the route's descriptors actions (route patches only).
	RateLimits []*route.RateLimit
}

// RateLimitPatches decodes an EnvoyFilter's patches, refusing every patch
// that is not Istio's local rate limiting with a message saying so.
func RateLimitPatches(ef *networking.EnvoyFilter) ([]RateLimitPatch, error) {
	var out []RateLimitPatch
	for i, p := range ef.GetConfigPatches() {
		field := fmt.Sprintf("spec.configPatches[%d]", i)
		rp, err := rateLimitPatch(p)
		if err != nil {
			return nil, &Error{Path: field, Reason: err.Error()}
		}
		out = append(out, rp)
	}
	return out, nil
}

func rateLimitPatch(p *networking.EnvoyFilter_EnvoyConfigObjectPatch) (RateLimitPatch, error) {
	rp := RateLimitPatch{Context: p.GetMatch().GetContext()}
	op := p.GetPatch().GetOperation()
	value := p.GetPatch().GetValue()
	unsupported := func(why string) (RateLimitPatch, error) {
		return rp, fmt.Errorf("%s; weft applies only EnvoyFilters that add %s (Istio's local rate limiting: applyTo HTTP_FILTER, or HTTP_ROUTE/VIRTUAL_HOST with MERGE)", why, LocalRateLimitFilter)
	}
	switch p.GetApplyTo() {
	case networking.EnvoyFilter_HTTP_FILTER:
		switch op {
		case networking.EnvoyFilter_Patch_INSERT_BEFORE, networking.EnvoyFilter_Patch_INSERT_AFTER,
			networking.EnvoyFilter_Patch_INSERT_FIRST, networking.EnvoyFilter_Patch_ADD:
		default:
			return unsupported(fmt.Sprintf("operation %s on HTTP_FILTER is not supported", op))
		}
		if name := value.GetFields()["name"].GetStringValue(); name != LocalRateLimitFilter {
			return unsupported(fmt.Sprintf("HTTP filter %q is not supported", name))
		}
		cfg, err := decodeLocalRateLimit(value.GetFields()["typed_config"])
		if err != nil {
			return rp, fmt.Errorf("patch.value.typed_config: %w", err)
		}
		rp.Config = cfg
		rp.Port = p.GetMatch().GetListener().GetPortNumber()
	case networking.EnvoyFilter_HTTP_ROUTE, networking.EnvoyFilter_VIRTUAL_HOST:
		if op != networking.EnvoyFilter_Patch_MERGE {
			return unsupported(fmt.Sprintf("operation %s on %s is not supported", op, p.GetApplyTo()))
		}
		rp.Route = true
		rc := p.GetMatch().GetRouteConfiguration()
		rp.Port, rp.VHostName, rp.RouteName = rc.GetPortNumber(), rc.GetVhost().GetName(), rc.GetVhost().GetRoute().GetName()
		for key, v := range value.GetFields() {
			switch key {
			case "typed_per_filter_config", "typedPerFilterConfig":
				for name, cfgv := range v.GetStructValue().GetFields() {
					if name != LocalRateLimitFilter {
						return unsupported(fmt.Sprintf("typed_per_filter_config %q is not supported", name))
					}
					cfg, err := decodeLocalRateLimit(cfgv)
					if err != nil {
						return rp, fmt.Errorf("patch.value.typed_per_filter_config: %w", err)
					}
					rp.Config = cfg
				}
			case "rate_limits", "rateLimits":
				if p.GetApplyTo() != networking.EnvoyFilter_HTTP_ROUTE {
					return unsupported("rate_limits are supported on HTTP_ROUTE only")
				}
				for j, rl := range v.GetListValue().GetValues() {
					b, _ := json.Marshal(rl)
					r := &route.RateLimit{}
					if err := protojson.Unmarshal(b, r); err != nil {
						return rp, fmt.Errorf("patch.value.rate_limits[%d]: %w", j, err)
					}
					if err := supportedActions(r); err != nil {
						return rp, fmt.Errorf("patch.value.rate_limits[%d]: %w", j, err)
					}
					rp.RateLimits = append(rp.RateLimits, r)
				}
			default:
				return unsupported(fmt.Sprintf("merging %q into a route is not supported", key))
			}
		}
		if rp.Config == nil && len(rp.RateLimits) == 0 {
			return unsupported("the patch sets nothing weft applies")
		}
	default:
		return unsupported(fmt.Sprintf("applyTo %s is not supported", p.GetApplyTo()))
	}
	return rp, nil
}

// decodeLocalRateLimit reads a typed config given as Istio's TypedStruct
// ({"@type": ".../TypedStruct", type_url, value}) or a plain Any.
func decodeLocalRateLimit(v *structpb.Value) (*localrl.LocalRateLimit, error) {
	fields := v.GetStructValue().GetFields()
	typ := fields["@type"].GetStringValue()
	var body map[string]*structpb.Value
	switch {
	case strings.HasSuffix(typ, "/udpa.type.v1.TypedStruct"), strings.HasSuffix(typ, "/xds.type.v3.TypedStruct"):
		if fields["type_url"].GetStringValue() != localRateLimitType {
			return nil, fmt.Errorf("type_url %q: want %s", fields["type_url"].GetStringValue(), localRateLimitType)
		}
		body = fields["value"].GetStructValue().GetFields()
	case typ == localRateLimitType:
		body = map[string]*structpb.Value{}
		for k, f := range fields {
			if k != "@type" {
				body[k] = f
			}
		}
	default:
		return nil, fmt.Errorf("@type %q: want %s or a TypedStruct of it", typ, localRateLimitType)
	}
	b, err := json.Marshal(&structpb.Struct{Fields: body})
	if err != nil {
		return nil, err
	}
	cfg := &localrl.LocalRateLimit{}
	if err := protojson.Unmarshal(b, cfg); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// supportedActions allows the descriptor actions weft proxy evaluates.
func supportedActions(r *route.RateLimit) error {
	for i, a := range r.GetActions() {
		switch a.GetActionSpecifier().(type) {
		case *route.RateLimit_Action_RequestHeaders_, *route.RateLimit_Action_GenericKey_, *route.RateLimit_Action_HeaderValueMatch_,
			*route.RateLimit_Action_RemoteAddress_:
		default:
			return fmt.Errorf("actions[%d]: %T is not supported (request_headers, generic_key, header_value_match, remote_address are)", i, a.GetActionSpecifier())
		}
	}
	return nil
}
