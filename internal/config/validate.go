package config

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"sort"
	"strings"

	"google.golang.org/protobuf/proto"
	networking "istio.io/api/networking/v1alpha3"
	security "istio.io/api/security/v1beta1"
)

// Validate checks obj the way Istio's validation does for the mistakes users
// hit: missing hosts or destinations, bad weights, regexes that do not
// compile, duplicate subsets and so on. Every error names the object's
// source, the object, the field path and the reason.
func Validate(obj *Object) error {
	if obj == nil {
		return &Error{Reason: "nil object"}
	}
	fe := &fieldErrors{source: obj.Source, object: obj.Key().String()}
	info, ok := lookupKindInfo(obj.Kind)
	if !ok {
		return &Error{Source: obj.Source, Object: obj.Key().String(), Path: "kind",
			Reason: fmt.Sprintf("unsupported kind %q; weft supports: %s", obj.Kind, supportedList()), Err: ErrUnsupportedKind}
	}
	validateMeta(fe, obj)
	if obj.Spec == nil || obj.Spec.ProtoReflect().Descriptor() != info.newSpec().ProtoReflect().Descriptor() {
		fe.add("spec", fmt.Sprintf("spec is %T, want the %s message", obj.Spec, obj.Kind))
		return fe.err()
	}
	v := &validator{fe: fe, ns: obj.Namespace}
	if v.checkRuleCounts(obj.Spec) {
		return fe.err()
	}
	switch spec := obj.Spec.(type) {
	case *networking.VirtualService:
		v.virtualService(spec)
	case *networking.DestinationRule:
		v.destinationRule(spec)
	case *networking.Gateway:
		v.gateway(spec)
	case *networking.ServiceEntry:
		v.serviceEntry(spec)
	case *networking.WorkloadEntry:
		v.workloadEntry("spec", spec)
	case *networking.Sidecar:
		v.sidecar(spec)
	case *networking.EnvoyFilter:
		if _, err := RateLimitPatches(spec); err != nil {
			var e *Error
			if errors.As(err, &e) {
				fe.add(e.Path, e.Reason)
			} else {
				fe.add("spec", err.Error())
			}
		}
	case *security.AuthorizationPolicy:
		v.authorizationPolicy(spec)
	case *security.PeerAuthentication, *security.RequestAuthentication:
		v.selectorOf(spec)
	}
	return fe.err()
}

// validator carries the error list and the object's namespace.
type validator struct {
	fe *fieldErrors
	ns string
}

func (v *validator) add(path, format string, args ...any) {
	v.fe.add(path, fmt.Sprintf(format, args...))
}

var (
	dns1123Label     = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	dns1123Subdomain = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
	labelName        = regexp.MustCompile(`^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$`)
	hostLabel        = regexp.MustCompile(`^(?i)[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
)

// validateMeta checks name, namespace and labels as Kubernetes would; names
// also become file names under --data-dir, so this keeps them safe.
func validateMeta(fe *fieldErrors, obj *Object) {
	switch {
	case obj.Name == "":
		fe.add("metadata.name", "missing; every object needs a name")
	case len(obj.Name) > 253 || !dns1123Subdomain.MatchString(obj.Name):
		fe.add("metadata.name", fmt.Sprintf("%q is not a valid name (lower-case letters, digits, '-' and '.', at most 253)", obj.Name))
	}
	if len(obj.Namespace) > 63 || !dns1123Label.MatchString(obj.Namespace) {
		fe.add("metadata.namespace", fmt.Sprintf("%q is not a valid namespace (lower-case letters, digits and '-', at most 63)", obj.Namespace))
	}
	for _, k := range sortedStringKeys(obj.Labels) {
		if reason := checkLabel(k, obj.Labels[k]); reason != "" {
			fe.add("metadata.labels["+k+"]", reason)
		}
	}
}

// checkLabel validates a Kubernetes label key and value.
func checkLabel(k, val string) string {
	name := k
	if i := strings.LastIndexByte(k, '/'); i >= 0 {
		prefix := k[:i]
		name = k[i+1:]
		if len(prefix) > 253 || !dns1123Subdomain.MatchString(prefix) {
			return fmt.Sprintf("label key %q has an invalid prefix", k)
		}
	}
	if len(name) > 63 || !labelName.MatchString(name) {
		return fmt.Sprintf("invalid label key %q", k)
	}
	if val != "" && (len(val) > 63 || !labelName.MatchString(val)) {
		return fmt.Sprintf("invalid label value %q", val)
	}
	return ""
}

// labels checks a label map at path.
func (v *validator) labels(path string, m map[string]string) {
	for _, k := range sortedStringKeys(m) {
		if reason := checkLabel(k, m[k]); reason != "" {
			v.add(path+"["+k+"]", "%s", reason)
		}
	}
}

// host checks a service host: a DNS name, optionally with a leading "*." or
// "*" alone. allowNamespace accepts Gateway and Sidecar's "ns/host" form.
func (v *validator) host(path, h string, allowNamespace bool) {
	if h == "" {
		v.add(path, "host must not be empty")
		return
	}
	if allowNamespace {
		ns, rest, found := strings.Cut(h, "/")
		if !found {
			v.add(path, "host %q must be NAMESPACE/HOST (e.g. \"*/reviews.default.svc.cluster.local\" or \"./*\")", h)
			return
		}
		if ns != "*" && ns != "." && ns != "~" && !dns1123Label.MatchString(ns) {
			v.add(path, "host %q: invalid namespace %q", h, ns)
		}
		h = rest
	}
	if reason := checkHostName(h); reason != "" {
		v.add(path, "%s", reason)
	}
}

// checkHostName validates a DNS host with an optional leading wildcard.
func checkHostName(h string) string {
	if h == "*" {
		return ""
	}
	name := strings.TrimPrefix(h, "*.")
	if name == "" || len(h) > 255 {
		return fmt.Sprintf("invalid host %q", h)
	}
	if _, err := netip.ParseAddr(name); err == nil {
		return ""
	}
	if strings.Contains(name, "*") {
		return fmt.Sprintf("invalid host %q: a wildcard is only allowed as the first label (\"*.example.com\")", h)
	}
	for _, label := range strings.Split(strings.TrimSuffix(name, "."), ".") {
		if len(label) > 63 || !hostLabel.MatchString(label) {
			return fmt.Sprintf("invalid host %q", h)
		}
	}
	return ""
}

// port checks a port number.
func (v *validator) port(path string, n uint32) {
	if n == 0 || n > 65535 {
		v.add(path, "port number %d is not in 1-65535", n)
	}
}

// regex checks that an RE2 regex compiles.
func (v *validator) regex(path, re string) {
	if _, err := regexp.Compile(re); err != nil {
		v.add(path, "invalid regex %q: %v", re, strings.TrimPrefix(err.Error(), "error parsing regexp: "))
	}
}

// selectorOf checks the workload selector of the security kinds.
func (v *validator) selectorOf(spec proto.Message) {
	switch s := spec.(type) {
	case *security.PeerAuthentication:
		v.labels("spec.selector.matchLabels", s.GetSelector().GetMatchLabels())
	case *security.RequestAuthentication:
		v.labels("spec.selector.matchLabels", s.GetSelector().GetMatchLabels())
	}
}

// authorizationPolicy checks the basic shape of an AuthorizationPolicy.
func (v *validator) authorizationPolicy(ap *security.AuthorizationPolicy) {
	v.labels("spec.selector.matchLabels", ap.GetSelector().GetMatchLabels())
	if ap.GetAction() == security.AuthorizationPolicy_CUSTOM {
		v.add("spec.action", "CUSTOM (external authorization) is not supported by weft; use ALLOW, DENY or AUDIT")
	}
	if ap.GetAction() != security.AuthorizationPolicy_CUSTOM && ap.GetProvider() != nil {
		v.add("spec.provider", "a provider is only allowed with action CUSTOM")
	}
}

func sortedStringKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
