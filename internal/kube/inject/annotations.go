package inject

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"
	"istio.io/api/annotation"
	meshconfig "istio.io/api/mesh/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"
)

// podSettings are the settings of one pod: the mesh's, with the pod's
// annotations applied.
type podSettings struct {
	image      string
	hold       bool
	dnsCapture bool
	resources  corev1.ResourceRequirements
	// The capture, as istio-iptables' flags.
	excludeOutboundPorts    string
	excludeInboundPorts     string
	includeInboundPorts     string
	inboundAnnotated        bool // includeInboundPorts comes from the annotation
	includeOutboundIPRanges string
	excludeOutboundIPRanges string
}

// parseAnnotations validates the pod's annotations weft honours and returns
// its settings; an invalid value is an error naming the annotation.
func parseAnnotations(a map[string]string, s Settings) (podSettings, []string, error) {
	ps := podSettings{image: s.Image, hold: s.HoldApplicationUntilProxyStarts, dnsCapture: s.DNSCapture, resources: *s.ProxyResources.DeepCopy(),
		includeOutboundIPRanges: "*"}
	var warnings []string
	if v, ok := a[annotation.SidecarProxyImage.Name]; ok {
		if strings.TrimSpace(v) == "" {
			return ps, nil, fmt.Errorf("annotation %s: empty image", annotation.SidecarProxyImage.Name)
		}
		ps.image = v
	}
	if v, ok := a[annotation.ProxyConfig.Name]; ok {
		pc, w, err := parseProxyConfig(v)
		if err != nil {
			return ps, nil, fmt.Errorf("annotation %s: %w", annotation.ProxyConfig.Name, err)
		}
		if pc.HoldApplicationUntilProxyStarts != nil {
			ps.hold = pc.HoldApplicationUntilProxyStarts.GetValue()
		}
		if v, ok := pc.ProxyMetadata[dnsCaptureMetadata]; ok {
			if ps.dnsCapture, ok = parseBool(v); !ok {
				return ps, nil, fmt.Errorf("annotation %s: proxyMetadata %s %q is not true or false", annotation.ProxyConfig.Name, dnsCaptureMetadata, v)
			}
		}
		warnings = append(warnings, w...)
	}
	if err := applyResources(a, &ps.resources); err != nil {
		return ps, nil, err
	}
	ports := []struct {
		name     string
		dst      *string
		wildcard bool
	}{
		{annotation.SidecarTrafficExcludeOutboundPorts.Name, &ps.excludeOutboundPorts, false},
		{annotation.SidecarTrafficExcludeInboundPorts.Name, &ps.excludeInboundPorts, false},
		{annotation.SidecarTrafficIncludeInboundPorts.Name, &ps.includeInboundPorts, true},
	}
	for _, p := range ports {
		if v, ok := a[p.name]; ok {
			list, err := portList(v, p.wildcard)
			if err != nil {
				return ps, nil, fmt.Errorf("annotation %s: %w", p.name, err)
			}
			*p.dst = list
		}
	}
	cidrs := []struct {
		name     string
		dst      *string
		wildcard bool
	}{
		{annotation.SidecarTrafficIncludeOutboundIPRanges.Name, &ps.includeOutboundIPRanges, true},
		{annotation.SidecarTrafficExcludeOutboundIPRanges.Name, &ps.excludeOutboundIPRanges, false},
	}
	_, ps.inboundAnnotated = a[annotation.SidecarTrafficIncludeInboundPorts.Name]
	for _, c := range cidrs {
		if v, ok := a[c.name]; ok {
			list, err := cidrList(v, c.wildcard)
			if err != nil {
				return ps, nil, fmt.Errorf("annotation %s: %w", c.name, err)
			}
			*c.dst = list
		}
	}
	for _, name := range []string{
		annotation.SidecarTrafficIncludeOutboundPorts.Name, annotation.SidecarTrafficExcludeInterfaces.Name,
		annotation.SidecarInterceptionMode.Name, annotation.SidecarStatusPort.Name,
	} {
		if _, ok := a[name]; ok {
			warnings = append(warnings, fmt.Sprintf("annotation %s is not implemented by weft; ignored", name))
		}
	}
	return ps, warnings, nil
}

// dnsCaptureMetadata is the proxyMetadata key that turns DNS capture on.
const dnsCaptureMetadata = "ISTIO_META_DNS_CAPTURE"

// parseProxyConfig reads a ProxyConfig (YAML) and warns of every field set
// that weft's injector does not honour: it honours
// holdApplicationUntilProxyStarts and proxyMetadata ISTIO_META_DNS_CAPTURE.
func parseProxyConfig(v string) (*meshconfig.ProxyConfig, []string, error) {
	js, err := yaml.YAMLToJSON([]byte(v))
	if err != nil {
		return nil, nil, fmt.Errorf("not YAML: %w", err)
	}
	pc := &meshconfig.ProxyConfig{}
	if s := strings.TrimSpace(string(js)); s != "null" && s != "" {
		if err := protojson.Unmarshal(js, pc); err != nil {
			return nil, nil, fmt.Errorf("not a ProxyConfig: %w", err)
		}
	}
	var warnings []string
	pc.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
		switch fd.JSONName() {
		case "holdApplicationUntilProxyStarts":
		case "proxyMetadata":
			for k := range pc.ProxyMetadata {
				if k != dnsCaptureMetadata {
					warnings = append(warnings, fmt.Sprintf("annotation %s: proxyMetadata %s is not implemented by weft's injector; ignored",
						annotation.ProxyConfig.Name, k))
				}
			}
		default:
			warnings = append(warnings, fmt.Sprintf("annotation %s: field %s is not implemented by weft's injector; ignored",
				annotation.ProxyConfig.Name, fd.JSONName()))
		}
		return true
	})
	slices.Sort(warnings)
	return pc, warnings, nil
}

// applyResources overrides the proxy's requests and limits with the
// sidecar.istio.io/proxyCPU, proxyMemory, proxyCPULimit and
// proxyMemoryLimit annotations.
func applyResources(a map[string]string, r *corev1.ResourceRequirements) error {
	for _, o := range []struct {
		name string
		list *corev1.ResourceList
		res  corev1.ResourceName
	}{
		{annotation.SidecarProxyCPU.Name, &r.Requests, corev1.ResourceCPU},
		{annotation.SidecarProxyMemory.Name, &r.Requests, corev1.ResourceMemory},
		{annotation.SidecarProxyCPULimit.Name, &r.Limits, corev1.ResourceCPU},
		{annotation.SidecarProxyMemoryLimit.Name, &r.Limits, corev1.ResourceMemory},
	} {
		v, ok := a[o.name]
		if !ok {
			continue
		}
		q, err := resource.ParseQuantity(v)
		if err != nil {
			return fmt.Errorf("annotation %s: %q is not a quantity (e.g. 100m, 128Mi): %w", o.name, v, err)
		}
		if q.Sign() <= 0 {
			return fmt.Errorf("annotation %s: %q must be positive", o.name, v)
		}
		if *o.list == nil {
			*o.list = corev1.ResourceList{}
		}
		(*o.list)[o.res] = q
	}
	for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, hasReq := r.Requests[res]
		lim, hasLim := r.Limits[res]
		if hasReq && hasLim && req.Cmp(lim) > 0 {
			return fmt.Errorf("annotations: the proxy's %s request %s is more than its limit %s", res, req.String(), lim.String())
		}
	}
	return nil
}

// portList validates a comma-separated list of ports ("*" allowed when
// wildcard) and returns it without spaces.
func portList(v string, wildcard bool) (string, error) {
	return csvList(v, wildcard, func(f string) (string, error) {
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 || n > 65535 {
			return "", fmt.Errorf("%q is not a port (1-65535); want a comma-separated list of ports", f)
		}
		return strconv.Itoa(n), nil
	})
}

// cidrList validates a comma-separated list of CIDRs ("*" allowed when
// wildcard) and returns it without spaces.
func cidrList(v string, wildcard bool) (string, error) {
	return csvList(v, wildcard, func(f string) (string, error) {
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return "", fmt.Errorf("%q is not a CIDR (e.g. 10.0.0.0/8); want a comma-separated list of CIDRs", f)
		}
		return p.String(), nil
	})
}

// csvList checks each item of a comma-separated list with one and joins
// the canonical items; "" (and "*" when wildcard) pass as they are.
func csvList(v string, wildcard bool, one func(string) (string, error)) (string, error) {
	v = strings.TrimSpace(v)
	if v == "" || (wildcard && v == "*") {
		return v, nil
	}
	var out []string
	for _, f := range strings.Split(v, ",") {
		item, err := one(strings.TrimSpace(f))
		if err != nil {
			return "", err
		}
		out = append(out, item)
	}
	return strings.Join(out, ","), nil
}
