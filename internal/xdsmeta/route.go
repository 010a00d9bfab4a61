package xdsmeta

// RouteRuleMetadata is the filter_metadata key of a route made from a
// VirtualService's http rule: {"rule": index of the rule, "match": index
// of its match clause (absent when the rule has none)}. The control plane
// writes it; weft explain reads it from a proxy's config dump.
const RouteRuleMetadata = "weft.route"
