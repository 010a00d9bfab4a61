package dataplane

import (
	"fmt"
	"net/textproto"
	"strconv"
	"strings"

	"google.golang.org/protobuf/types/known/structpb"

	"github.com/weft-mesh/weft/internal/proxy/stats"
	weftconfig "github.com/weft-mesh/weft/internal/xdsmeta"
)

// rstatsOverrides are a chain's Telemetry tag overrides: the stats
// overrides and, in the order of their Dims, how to read each dimension.
type rstatsOverrides struct {
	ov   *stats.Overrides
	dims []dimExpr
}

// dimExpr reads one dimension's value: from the request (when the
// observation starts) or, for response.code, when it is recorded.
type dimExpr struct {
	weftconfig.MetricDimension
	lower, canon string // header names
}

// statsFamilies maps the stats plugin's metric names to the HTTP families.
var statsFamilies = map[string]stats.Skip{
	"requests_total":                stats.SkipRequests,
	"request_duration_milliseconds": stats.SkipDuration,
	"request_bytes":                 stats.SkipRequestBytes,
	"response_bytes":                stats.SkipResponseBytes,
}

func compileDimExpr(expr string) (dimExpr, error) {
	d, err := weftconfig.ParseMetricDimension(expr)
	if err != nil {
		return dimExpr{}, err
	}
	return dimExpr{MetricDimension: d, lower: strings.ToLower(d.Header), canon: textproto.CanonicalMIMEHeaderKey(d.Header)}, nil
}

// compileStatsOverrides reads the stats plugin's metrics[] entries that
// carry dimensions or tags_to_remove (name "" applies to every family).
func compileStatsOverrides(metrics []*structpb.Value) (*rstatsOverrides, error) {
	byFamily := map[stats.Skip]stats.FamilyOverride{}
	exprs := map[string]string{}
	for _, m := range metrics {
		f := m.GetStructValue().GetFields()
		dims, remove := f["dimensions"].GetStructValue().GetFields(), f["tags_to_remove"].GetListValue().GetValues()
		if len(dims) == 0 && len(remove) == 0 {
			continue
		}
		var fams []stats.Skip
		if name := f["name"].GetStringValue(); name == "" {
			fams = []stats.Skip{stats.SkipRequests, stats.SkipDuration, stats.SkipRequestBytes, stats.SkipResponseBytes}
		} else if bit, ok := statsFamilies[name]; ok {
			fams = []stats.Skip{bit}
		} else if !strings.HasPrefix(name, "tcp_") {
			return nil, fmt.Errorf("metric %q is not one of Istio's", name)
		}
		for _, bit := range fams {
			fo := byFamily[bit]
			for tag, v := range dims {
				if prev, ok := exprs[tag]; ok && prev != v.GetStringValue() {
					return nil, fmt.Errorf("dimension %q has two expressions (%q, %q)", tag, prev, v.GetStringValue())
				}
				exprs[tag] = v.GetStringValue()
				fo.Dims = append(fo.Dims, tag)
			}
			for _, r := range remove {
				fo.Remove = append(fo.Remove, r.GetStringValue())
			}
			byFamily[bit] = fo
		}
	}
	if len(byFamily) == 0 {
		return nil, nil
	}
	out := &rstatsOverrides{ov: stats.NewOverrides(byFamily)}
	for _, name := range out.ov.Dims {
		d, err := compileDimExpr(exprs[name])
		if err != nil {
			return nil, fmt.Errorf("dimension %q: %w", name, err)
		}
		out.dims = append(out.dims, d)
	}
	return out, nil
}

// requestValues reads the request's dimension values (response-phase ones
// stay empty until values).
func (s *rstatsOverrides) requestValues(r request) []string {
	out := make([]string, len(s.dims))
	for i, d := range s.dims {
		switch d.Attribute {
		case weftconfig.DimLiteral:
			out[i] = d.Literal
		case weftconfig.DimHost:
			out[i] = strings.Clone(r.authority())
		case weftconfig.DimMethod:
			out[i] = strings.Clone(r.method())
		case weftconfig.DimPath:
			out[i] = strings.Clone(r.pathQuery())
		case weftconfig.DimURLPath:
			p, _, _ := strings.Cut(r.pathQuery(), "?")
			out[i] = strings.Clone(p)
		case weftconfig.DimHeader:
			v, _ := r.header(d.lower, d.canon)
			out[i] = strings.Clone(v)
		}
	}
	return out
}

// values joins the dimension values for stats.RequestOverridden, filling
// in the response's.
func (s *rstatsOverrides) values(req []string, code int) string {
	for i, d := range s.dims {
		if d.Attribute == weftconfig.DimResponseCode && i < len(req) {
			req[i] = strconv.Itoa(code)
		}
	}
	return strings.Join(req, stats.DimSeparator)
}
