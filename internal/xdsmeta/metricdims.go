package xdsmeta

import (
	"fmt"
	"regexp"
	"strings"
)

// MetricDimension is what a Telemetry tag override's value reads: the
// subset of Istio's attribute expressions weft evaluates.
type MetricDimension struct {
	// Attribute is one of the Dim* attributes.
	Attribute string
	// Literal is the value of a quoted string ('v' or "v").
	Literal string
	// Header is the request header of request.headers['NAME'].
	Header string
}

// The attributes a MetricDimension reads.
const (
	DimLiteral      = "literal"
	DimHost         = "request.host"
	DimMethod       = "request.method"
	DimPath         = "request.path"
	DimURLPath      = "request.url_path"
	DimHeader       = "request.headers"
	DimResponseCode = "response.code"
)

var headerDimension = regexp.MustCompile(`^request\.headers\[\s*(?:'([^']+)'|"([^"]+)")\s*\]$`)

// ParseMetricDimension parses a tag override's value expression.
func ParseMetricDimension(expr string) (MetricDimension, error) {
	e := strings.TrimSpace(expr)
	switch e {
	case DimHost, DimMethod, DimPath, DimURLPath, DimResponseCode:
		return MetricDimension{Attribute: e}, nil
	}
	if m := headerDimension.FindStringSubmatch(e); m != nil {
		return MetricDimension{Attribute: DimHeader, Header: m[1] + m[2]}, nil
	}
	if len(e) >= 2 && (e[0] == '\'' && e[len(e)-1] == '\'' || e[0] == '"' && e[len(e)-1] == '"') {
		return MetricDimension{Attribute: DimLiteral, Literal: e[1 : len(e)-1]}, nil
	}
	return MetricDimension{}, fmt.Errorf("expression %q is not supported (request.host, request.method, request.path, request.url_path, request.headers['NAME'], response.code and 'literal' are)", expr)
}
