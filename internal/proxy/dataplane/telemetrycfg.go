package dataplane

import (
	"fmt"
	"net/textproto"
	"os"
	"strings"

	xdstype "github.com/cncf/xds/go/xds/type/v3"
	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	fileal "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/file/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"go.opentelemetry.io/otel/attribute"

	"github.com/weft-mesh/weft/internal/proxy/accesslog"
	"github.com/weft-mesh/weft/internal/proxy/http1"
	"github.com/weft-mesh/weft/internal/proxy/stats"
)

// statsFilter is Istio's metrics filter; its TypedStruct config
// (stats.PluginConfig) lists metrics to drop.
const (
	statsFilter     = "istio.stats"
	statsPluginType = "type.googleapis.com/stats.PluginConfig"
)

// rtrace is a connection manager's tracing config: spans are made only
// for chains that have one.
type rtrace struct {
	sample *float64 // random_sampling percent (nil: the proxy's default)
	tags   []customTag
}

type customTag struct {
	name, literal, header, canon, def string
}

// ralog is a connection manager's access log: a format and a filter.
type ralog struct {
	format accesslog.Format
	filter func(status int) bool // nil: log everything
}

// statsDrop lists the Istio metrics a chain does not record.
type statsDrop struct {
	requests, duration, requestBytes, responseBytes bool
}

func (d *statsDrop) all() bool {
	return d != nil && d.requests && d.duration && d.requestBytes && d.responseBytes
}

func compileTracing(c *rchain, t *hcm.HttpConnectionManager_Tracing) error {
	if t == nil {
		return nil
	}
	switch {
	case t.GetProvider() != nil:
		return fmt.Errorf("tracing.provider is not supported (spans go to the proxy's OTLP endpoint)")
	case t.GetClientSampling() != nil || t.GetOverallSampling() != nil:
		return fmt.Errorf("tracing: only random_sampling is supported")
	}
	out := &rtrace{}
	if p := t.GetRandomSampling(); p != nil {
		v := p.GetValue()
		out.sample = &v
	}
	for _, ct := range t.GetCustomTags() {
		tag := customTag{name: ct.GetTag()}
		switch {
		case ct.GetLiteral() != nil:
			tag.literal = ct.GetLiteral().GetValue()
		case ct.GetRequestHeader() != nil:
			tag.header = strings.ToLower(ct.GetRequestHeader().GetName())
			tag.canon = http1CanonicalKey(tag.header)
			tag.def = ct.GetRequestHeader().GetDefaultValue()
		case ct.GetEnvironment() != nil:
			tag.literal = os.Getenv(ct.GetEnvironment().GetName())
			if tag.literal == "" {
				tag.literal = ct.GetEnvironment().GetDefaultValue()
			}
		default:
			return fmt.Errorf("tracing.custom_tags %q: only literal, request_header and environment are supported", ct.GetTag())
		}
		out.tags = append(out.tags, tag)
	}
	c.trace = out
	return nil
}

func compileAccessLogs(c *rchain, logs []*accesslogv3.AccessLog) error {
	for i, al := range logs {
		msg, err := anyOf(al.GetTypedConfig())
		if err != nil {
			return fmt.Errorf("access_log[%d]: %w", i, err)
		}
		f, ok := msg.(*fileal.FileAccessLog)
		if !ok {
			return fmt.Errorf("access_log[%d] %q: only envoy.access_loggers.file is supported", i, al.GetName())
		}
		if f.GetPath() != "/dev/stdout" {
			return fmt.Errorf("access_log[%d]: path %q: only /dev/stdout (weft logs, --access-log) is supported", i, f.GetPath())
		}
		out := &ralog{format: accesslog.DefaultFormat}
		if jf := f.GetLogFormat().GetJsonFormat(); jf != nil {
			var fields []accesslog.Field
			for _, k := range sortedKeys(jf.GetFields()) {
				op, err := accesslog.ParseOperator(jf.GetFields()[k].GetStringValue())
				if err != nil {
					return fmt.Errorf("access_log[%d].json_format %q: %w", i, k, err)
				}
				fields = append(fields, accesslog.Field{Key: k, Op: op})
			}
			out.format = accesslog.NewFormat(fields)
		} else if f.GetLogFormat() != nil || f.GetFormat() != "" || f.GetJsonFormat() != nil {
			return fmt.Errorf("access_log[%d]: only log_format.json_format is supported", i)
		}
		if fl := al.GetFilter(); fl != nil {
			if out.filter, err = compileLogFilter(fl); err != nil {
				return fmt.Errorf("access_log[%d].filter: %w", i, err)
			}
		}
		if c.alog != nil {
			return fmt.Errorf("access_log: only one access log per connection manager is supported")
		}
		c.alog = out
	}
	return nil
}

func compileLogFilter(f *accesslogv3.AccessLogFilter) (func(int) bool, error) {
	switch s := f.GetFilterSpecifier().(type) {
	case *accesslogv3.AccessLogFilter_StatusCodeFilter:
		cmp := s.StatusCodeFilter.GetComparison()
		v := int(cmp.GetValue().GetDefaultValue())
		switch cmp.GetOp() {
		case accesslogv3.ComparisonFilter_EQ:
			return func(code int) bool { return code == v }, nil
		case accesslogv3.ComparisonFilter_GE:
			return func(code int) bool { return code >= v }, nil
		case accesslogv3.ComparisonFilter_LE:
			return func(code int) bool { return code <= v }, nil
		case accesslogv3.ComparisonFilter_NE:
			return func(code int) bool { return code != v }, nil
		}
	case *accesslogv3.AccessLogFilter_AndFilter, *accesslogv3.AccessLogFilter_OrFilter:
		var subs []*accesslogv3.AccessLogFilter
		and := false
		if a, ok := s.(*accesslogv3.AccessLogFilter_AndFilter); ok {
			subs, and = a.AndFilter.GetFilters(), true
		} else {
			subs = s.(*accesslogv3.AccessLogFilter_OrFilter).OrFilter.GetFilters()
		}
		var fs []func(int) bool
		for _, sub := range subs {
			fn, err := compileLogFilter(sub)
			if err != nil {
				return nil, err
			}
			fs = append(fs, fn)
		}
		return func(code int) bool {
			for _, fn := range fs {
				if fn(code) != and {
					return !and
				}
			}
			return and
		}, nil
	}
	return nil, fmt.Errorf("%T is not supported (status_code_filter, and_filter, or_filter are)", f.GetFilterSpecifier())
}

// compileStatsFilter reads Istio's stats plugin config: the metrics dropped.
func compileStatsFilter(c *rchain, ts *xdstype.TypedStruct) error {
	if ts.GetTypeUrl() != statsPluginType {
		return fmt.Errorf("%s: type_url %q: want %s", statsFilter, ts.GetTypeUrl(), statsPluginType)
	}
	d := &statsDrop{}
	for k, v := range ts.GetValue().GetFields() {
		if k != "metrics" {
			return fmt.Errorf("%s: %q is not supported (only metrics[].name, drop, dimensions and tags_to_remove)", statsFilter, k)
		}
		ov, err := compileStatsOverrides(v.GetListValue().GetValues())
		if err != nil {
			return fmt.Errorf("%s: %w", statsFilter, err)
		}
		c.statsOv = ov
		for _, m := range v.GetListValue().GetValues() {
			f := m.GetStructValue().GetFields()
			if !f["drop"].GetBoolValue() {
				if len(f["dimensions"].GetStructValue().GetFields())+len(f["tags_to_remove"].GetListValue().GetValues()) == 0 {
					return fmt.Errorf("%s: a metrics entry must drop, add dimensions or remove tags", statsFilter)
				}
				continue
			}
			switch name := f["name"].GetStringValue(); name {
			case "requests_total":
				d.requests = true
			case "request_duration_milliseconds":
				d.duration = true
			case "request_bytes":
				d.requestBytes = true
			case "response_bytes":
				d.responseBytes = true
			case "tcp_connections_opened_total", "tcp_connections_closed_total", "tcp_sent_bytes_total", "tcp_received_bytes_total":
			default:
				return fmt.Errorf("%s: metric %q is not one of Istio's", statsFilter, name)
			}
		}
	}
	c.statsDrop = d
	return nil
}

// http1CanonicalKey is the canonical MIME form of a header name.
func http1CanonicalKey(s string) string { return textproto.CanonicalMIMEHeaderKey(s) }

// tagAttributes are the span attributes of a chain's custom tags for a request.
func (t *rtrace) tagAttributes(h interface{ Get(string) string }) []attribute.KeyValue {
	if t == nil || len(t.tags) == 0 {
		return nil
	}
	out := make([]attribute.KeyValue, 0, len(t.tags))
	for _, ct := range t.tags {
		v := ct.literal
		if ct.header != "" {
			if v = h.Get(ct.canon); v == "" {
				v = ct.def
			}
		}
		out = append(out, attribute.String(ct.name, v))
	}
	return out
}

var _ interface{ Get(string) string } = http1.Header(nil)

// skip is the stats families the chain drops.
func (d *statsDrop) skip() stats.Skip {
	var s stats.Skip
	if d.requests {
		s |= stats.SkipRequests
	}
	if d.duration {
		s |= stats.SkipDuration
	}
	if d.requestBytes {
		s |= stats.SkipRequestBytes
	}
	if d.responseBytes {
		s |= stats.SkipResponseBytes
	}
	return s
}
