package config

import "github.com/weft-mesh/weft/internal/xdsmeta"

// IstioAccessLogFormat is xdsmeta.IstioAccessLogFormat, Istio's JSON
// access log format.
var IstioAccessLogFormat = xdsmeta.IstioAccessLogFormat

// ParseMetricDimension is xdsmeta.ParseMetricDimension: it parses a
// Telemetry tag override's value expression.
func ParseMetricDimension(expr string) (xdsmeta.MetricDimension, error) {
	return xdsmeta.ParseMetricDimension(expr)
}
