package translate

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	xdstype "github.com/cncf/xds/go/xds/type/v3"
	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	fileal "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/file/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tracingtype "github.com/envoyproxy/go-control-plane/envoy/type/tracing/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"
	telemetry "istio.io/api/telemetry/v1alpha1"

	"github.com/weft-mesh/weft/internal/config"
	"github.com/weft-mesh/weft/internal/controlplane/registry"
)

// StatsFilter is the HTTP filter carrying Istio's metrics overrides, as
// Istio's proxies name it; its config is a TypedStruct of stats.PluginConfig.
const StatsFilter = "istio.stats"

// statsPluginType is the type URL of Istio's stats plugin config.
const statsPluginType = "type.googleapis.com/stats.PluginConfig"

// telemetryPolicy is the merged effect of the Telemetry resources on one proxy.
type telemetryPolicy struct {
	sampling     *float64
	disableSpans bool
	tags         map[string]*telemetry.Tracing_CustomTag
	logsOff      bool
	logFilter    string
	// dropped[mode][metric]: metrics disabled for client (outbound) or server (inbound) traffic.
	dropped map[telemetry.WorkloadMode]map[string]bool
	// tags[mode][metric][tag]: tag overrides (nil: removed; else the
	// dimension's expression), later scopes overriding earlier ones per tag.
	metricTags map[telemetry.WorkloadMode]map[string]map[string]*string
}

// httpMetricNames are the stats plugin's HTTP metrics, the ones tag
// overrides apply to.
var httpMetricNames = map[string]bool{"requests_total": true, "request_duration_milliseconds": true, "request_bytes": true, "response_bytes": true}

// istioMetricNames maps Telemetry's metric enum to the stats plugin's names.
var istioMetricNames = map[telemetry.MetricSelector_IstioMetric][]string{
	telemetry.MetricSelector_REQUEST_COUNT:          {"requests_total"},
	telemetry.MetricSelector_REQUEST_DURATION:       {"request_duration_milliseconds"},
	telemetry.MetricSelector_REQUEST_SIZE:           {"request_bytes"},
	telemetry.MetricSelector_RESPONSE_SIZE:          {"response_bytes"},
	telemetry.MetricSelector_TCP_OPENED_CONNECTIONS: {"tcp_connections_opened_total"},
	telemetry.MetricSelector_TCP_CLOSED_CONNECTIONS: {"tcp_connections_closed_total"},
	telemetry.MetricSelector_TCP_SENT_BYTES:         {"tcp_sent_bytes_total"},
	telemetry.MetricSelector_TCP_RECEIVED_BYTES:     {"tcp_received_bytes_total"},
	telemetry.MetricSelector_ALL_METRICS: {"requests_total", "request_duration_milliseconds", "request_bytes", "response_bytes",
		"tcp_connections_opened_total", "tcp_connections_closed_total", "tcp_sent_bytes_total", "tcp_received_bytes_total"},
}

// telemetryFor merges the Telemetry resources that apply to the proxy with
// Istio's precedence: the root namespace's, then its namespace's, then one
// selecting the workload, each overriding what the earlier set.
func (b *builder) telemetryFor() *telemetryPolicy {
	root, ns, wl := b.policyScopes(config.KindTelemetry, func(o *config.Object) map[string]string {
		return o.Spec.(*telemetry.Telemetry).GetSelector().GetMatchLabels()
	})
	p := &telemetryPolicy{dropped: map[telemetry.WorkloadMode]map[string]bool{}, metricTags: map[telemetry.WorkloadMode]map[string]map[string]*string{}}
	for _, o := range []*config.Object{root, ns, wl} {
		if o != nil {
			b.mergeTelemetry(p, o)
		}
	}
	return p
}

func (b *builder) mergeTelemetry(p *telemetryPolicy, o *config.Object) {
	t := o.Spec.(*telemetry.Telemetry)
	for i, tr := range t.GetTracing() {
		if v := tr.GetRandomSamplingPercentage(); v != nil {
			s := v.GetValue()
			p.sampling = &s
		}
		if v := tr.GetDisableSpanReporting(); v != nil {
			p.disableSpans = v.GetValue()
		}
		if len(tr.GetCustomTags()) > 0 {
			p.tags = tr.GetCustomTags()
		}
		if len(tr.GetProviders()) > 0 || tr.GetMatch() != nil || tr.GetUseRequestIdForTraceSampling() != nil {
			b.warn(o, fmt.Sprintf("spec.tracing[%d]", i), "providers, match and useRequestIdForTraceSampling are not implemented yet; spans go to the proxy's OTLP endpoint")
		}
	}
	for i, m := range t.GetMetrics() {
		for j, ov := range m.GetOverrides() {
			modes := []telemetry.WorkloadMode{telemetry.WorkloadMode_CLIENT, telemetry.WorkloadMode_SERVER}
			switch ov.GetMatch().GetMode() {
			case telemetry.WorkloadMode_CLIENT:
				modes = modes[:1]
			case telemetry.WorkloadMode_SERVER:
				modes = modes[1:]
			}
			names := istioMetricNames[ov.GetMatch().GetMetric()]
			if ov.GetMatch().GetCustomMetric() != "" {
				names = []string{strings.TrimPrefix(ov.GetMatch().GetCustomMetric(), "istio_")}
			}
			for _, mode := range modes {
				if p.dropped[mode] == nil {
					p.dropped[mode] = map[string]bool{}
				}
				for _, n := range names {
					if ov.GetDisabled() != nil {
						p.dropped[mode][n] = ov.GetDisabled().GetValue()
					}
				}
			}
			for tag, to := range ov.GetTagOverrides() {
				path := fmt.Sprintf("spec.metrics[%d].overrides[%d].tagOverrides[%s]", i, j, tag)
				var expr *string
				if to.GetOperation() == telemetry.MetricsOverrides_TagOverride_UPSERT {
					v := to.GetValue()
					if _, err := config.ParseMetricDimension(v); err != nil {
						b.warn(o, path+".value", err.Error()+"; the override is ignored")
						continue
					}
					expr = &v
				}
				for _, mode := range modes {
					for _, n := range names {
						if !httpMetricNames[n] {
							if ov.GetMatch().GetMetric() != telemetry.MetricSelector_ALL_METRICS {
								b.warn(o, path, "tag overrides of TCP metrics are not implemented yet; ignored")
							}
							continue
						}
						if p.metricTags[mode] == nil {
							p.metricTags[mode] = map[string]map[string]*string{}
						}
						if p.metricTags[mode][n] == nil {
							p.metricTags[mode][n] = map[string]*string{}
						}
						p.metricTags[mode][n][tag] = expr
					}
				}
			}
		}
		if m.GetReportingInterval() != nil {
			b.warn(o, fmt.Sprintf("spec.metrics[%d].reportingInterval", i), "not implemented yet; metrics are always current")
		}
	}
	for i, al := range t.GetAccessLogging() {
		if v := al.GetDisabled(); v != nil {
			p.logsOff = v.GetValue()
		}
		if f := al.GetFilter(); f != nil {
			p.logFilter = f.GetExpression()
			if _, err := accessLogFilter(p.logFilter); err != nil {
				b.warn(o, fmt.Sprintf("spec.accessLogging[%d].filter.expression", i), err.Error())
			}
		}
	}
}

// applyTelemetry writes the proxy's tracing, access log and metrics
// settings into every HTTP connection manager.
func (b *builder) applyTelemetry() {
	p := b.telemetryFor()
	for _, r := range b.out.Listeners {
		l := r.(*listener.Listener)
		inbound := l.GetName() == VirtualInbound
		mode := telemetry.WorkloadMode_CLIENT
		if inbound {
			mode = telemetry.WorkloadMode_SERVER
		}
		for _, fc := range l.GetFilterChains() {
			for _, f := range fc.GetFilters() {
				m := &hcm.HttpConnectionManager{}
				if !f.GetTypedConfig().MessageIs(m) || f.GetTypedConfig().UnmarshalTo(m) != nil {
					continue
				}
				p.apply(m, mode)
				f.ConfigType = &listener.Filter_TypedConfig{TypedConfig: mustAny(m)}
			}
		}
	}
}

func (p *telemetryPolicy) apply(m *hcm.HttpConnectionManager, mode telemetry.WorkloadMode) {
	if !p.disableSpans {
		t := &hcm.HttpConnectionManager_Tracing{}
		if p.sampling != nil {
			t.RandomSampling = &typev3.Percent{Value: *p.sampling}
		}
		names := make([]string, 0, len(p.tags))
		for n := range p.tags {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			ct := p.tags[n]
			tag := &tracingtype.CustomTag{Tag: n}
			switch {
			case ct.GetLiteral() != nil:
				tag.Type = &tracingtype.CustomTag_Literal_{Literal: &tracingtype.CustomTag_Literal{Value: ct.GetLiteral().GetValue()}}
			case ct.GetHeader() != nil:
				tag.Type = &tracingtype.CustomTag_RequestHeader{RequestHeader: &tracingtype.CustomTag_Header{Name: ct.GetHeader().GetName(), DefaultValue: ct.GetHeader().GetDefaultValue()}}
			case ct.GetEnvironment() != nil:
				tag.Type = &tracingtype.CustomTag_Environment_{Environment: &tracingtype.CustomTag_Environment{Name: ct.GetEnvironment().GetName(), DefaultValue: ct.GetEnvironment().GetDefaultValue()}}
			default:
				continue
			}
			t.CustomTags = append(t.CustomTags, tag)
		}
		m.Tracing = t
	}
	if !p.logsOff {
		fields := map[string]*structpb.Value{}
		for _, kv := range config.IstioAccessLogFormat {
			fields[kv[0]] = structpb.NewStringValue(kv[1])
		}
		al := &accesslogv3.AccessLog{Name: "envoy.access_loggers.file", ConfigType: &accesslogv3.AccessLog_TypedConfig{TypedConfig: mustAny(&fileal.FileAccessLog{
			Path: "/dev/stdout",
			AccessLogFormat: &fileal.FileAccessLog_LogFormat{LogFormat: &core.SubstitutionFormatString{
				Format: &core.SubstitutionFormatString_JsonFormat{JsonFormat: &structpb.Struct{Fields: fields}}}},
		})}}
		if p.logFilter != "" {
			if f, err := accessLogFilter(p.logFilter); err == nil {
				al.Filter = f
			}
		}
		m.AccessLog = []*accesslogv3.AccessLog{al}
	}
	var dropped []string
	for n, off := range p.dropped[mode] {
		if off {
			dropped = append(dropped, n)
		}
	}
	sort.Strings(dropped)
	var metrics []any
	for _, n := range dropped {
		metrics = append(metrics, map[string]any{"name": n, "drop": true})
	}
	for _, n := range sortedKeys(p.metricTags[mode]) {
		dims, remove := map[string]any{}, []any{}
		for _, tag := range sortedKeys(p.metricTags[mode][n]) {
			if expr := p.metricTags[mode][n][tag]; expr != nil {
				dims[tag] = *expr
			} else {
				remove = append(remove, tag)
			}
		}
		metrics = append(metrics, map[string]any{"name": n, "dimensions": dims, "tags_to_remove": remove})
	}
	if len(metrics) > 0 {
		value, _ := structpb.NewStruct(map[string]any{"metrics": metrics})
		stats := &hcm.HttpFilter{Name: StatsFilter, ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: typedStruct(statsPluginType, value)}}
		n := len(m.HttpFilters)
		m.HttpFilters = append(m.HttpFilters[:n-1:n-1], stats, m.HttpFilters[n-1])
	}
}

// celComparison is the subset of CEL weft translates into Envoy access
// log filters: comparisons of response.code, joined by && or ||.
var celComparison = regexp.MustCompile(`^\s*response\.code\s*(>=|<=|==|>|<|!=)\s*(\d{3})\s*$`)

// accessLogFilter translates a Telemetry filter expression.
func accessLogFilter(expr string) (*accesslogv3.AccessLogFilter, error) {
	if ors := strings.Split(expr, "||"); len(ors) > 1 {
		var fs []*accesslogv3.AccessLogFilter
		for _, part := range ors {
			f, err := accessLogFilter(part)
			if err != nil {
				return nil, err
			}
			fs = append(fs, f)
		}
		return &accesslogv3.AccessLogFilter{FilterSpecifier: &accesslogv3.AccessLogFilter_OrFilter{OrFilter: &accesslogv3.OrFilter{Filters: fs}}}, nil
	}
	if ands := strings.Split(expr, "&&"); len(ands) > 1 {
		var fs []*accesslogv3.AccessLogFilter
		for _, part := range ands {
			f, err := accessLogFilter(part)
			if err != nil {
				return nil, err
			}
			fs = append(fs, f)
		}
		return &accesslogv3.AccessLogFilter{FilterSpecifier: &accesslogv3.AccessLogFilter_AndFilter{AndFilter: &accesslogv3.AndFilter{Filters: fs}}}, nil
	}
	m := celComparison.FindStringSubmatch(expr)
	if m == nil {
		return nil, fmt.Errorf("%q: weft evaluates only comparisons of response.code (>=, <=, ==, >, <, !=) joined by && or ||", strings.TrimSpace(expr))
	}
	code, _ := strconv.Atoi(m[2])
	cmp := func(op accesslogv3.ComparisonFilter_Op, v int) *accesslogv3.AccessLogFilter {
		return &accesslogv3.AccessLogFilter{FilterSpecifier: &accesslogv3.AccessLogFilter_StatusCodeFilter{StatusCodeFilter: &accesslogv3.StatusCodeFilter{
			Comparison: &accesslogv3.ComparisonFilter{Op: op, Value: &core.RuntimeUInt32{DefaultValue: uint32(v), RuntimeKey: "access_log.status"}}}}}
	}
	switch m[1] {
	case ">=":
		return cmp(accesslogv3.ComparisonFilter_GE, code), nil
	case "<=":
		return cmp(accesslogv3.ComparisonFilter_LE, code), nil
	case "==":
		return cmp(accesslogv3.ComparisonFilter_EQ, code), nil
	case ">":
		return cmp(accesslogv3.ComparisonFilter_GE, code+1), nil
	case "<":
		return cmp(accesslogv3.ComparisonFilter_LE, code-1), nil
	}
	// Envoy has no "not equal": x != v is x <= v-1 || x >= v+1.
	return &accesslogv3.AccessLogFilter{FilterSpecifier: &accesslogv3.AccessLogFilter_OrFilter{OrFilter: &accesslogv3.OrFilter{Filters: []*accesslogv3.AccessLogFilter{
		cmp(accesslogv3.ComparisonFilter_LE, code-1), cmp(accesslogv3.ComparisonFilter_GE, code+1)}}}}, nil
}

// typedStruct wraps a config of a type go-control-plane does not know.
func typedStruct(typeURL string, value *structpb.Struct) *anypb.Any {
	return mustAny(&xdstype.TypedStruct{TypeUrl: typeURL, Value: value})
}

// policyScopes finds the policies of a kind that apply to the proxy, as
// Istio scopes Telemetry, PeerAuthentication and the like: the root
// namespace's without a selector, its namespace's without one, and one in
// its namespace whose selector matches it (the oldest of each).
func (b *builder) policyScopes(kind string, selector func(*config.Object) map[string]string) (mesh, ns, workload *config.Object) {
	return b.policyScopesFor(kind, b.in.Proxy.Namespace, b.in.Proxy.Labels, selector)
}

// policyScopesFor is policyScopes for any workload (namespace and labels);
// kind is one of the kinds index() keeps in b.policies.
func (b *builder) policyScopesFor(kind, namespace string, labels map[string]string, selector func(*config.Object) map[string]string) (mesh, ns, workload *config.Object) {
	for _, o := range b.policies[kind] {
		sel := selector(o)
		switch {
		case o.Namespace == namespace && len(sel) > 0 && registry.Matches(sel, labels):
			if workload == nil || older(o, workload) {
				workload = o
			}
		case o.Namespace == namespace && len(sel) == 0 && o.Namespace != RootNamespace:
			if ns == nil || older(o, ns) {
				ns = o
			}
		case o.Namespace == RootNamespace && len(sel) == 0:
			if mesh == nil || older(o, mesh) {
				mesh = o
			}
		}
	}
	return mesh, ns, workload
}
