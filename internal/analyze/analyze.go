// Package analyze checks a set of Istio config objects the way
// `istioctl analyze` does and reports Istio's analysis messages, with
// Istio's codes and wording ("Error [IST0101] (VirtualService
// default/reviews) Referenced host not found: \"reviewz\""), plus weft's own
// WEFT codes. It is pure: objects in, messages out; the registry of services
// and workloads is derived from the ServiceEntry and WorkloadEntry objects
// given, as the control plane does.
package analyze

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/weft-mesh/weft/internal/config"
	"github.com/weft-mesh/weft/internal/controlplane/registry"
)

// Level is a message's severity, as Istio's.
type Level int

// Levels, least severe first.
const (
	Info Level = iota
	Warning
	Error
)

// String returns Istio's spelling: "Error", "Warning", "Info".
func (l Level) String() string {
	switch l {
	case Error:
		return "Error"
	case Warning:
		return "Warning"
	}
	return "Info"
}

// Code is one kind of message: Istio's code and name, and its level.
type Code struct {
	ID    string // "IST0101"
	Name  string // "ReferencedResourceNotFound"
	Level Level
}

// The messages weft reports. The IST codes are Istio's (same code, name,
// level and wording); WEFT codes are weft's own, for what Istio has no code.
var (
	ReferencedResourceNotFound          = Code{"IST0101", "ReferencedResourceNotFound", Error}
	SchemaValidationError               = Code{"IST0106", "SchemaValidationError", Error}
	VirtualServiceUnreachableRule       = Code{"IST0130", "VirtualServiceUnreachableRule", Warning}
	VirtualServiceIneffectiveMatch      = Code{"IST0131", "VirtualServiceIneffectiveMatch", Info}
	VirtualServiceHostNotFoundInGateway = Code{"IST0132", "VirtualServiceHostNotFoundInGateway", Warning}
	ConflictingGateways                 = Code{"IST0145", "ConflictingGateways", Error}
	DestinationRuleSubsetNotSelectPods  = Code{"IST0173", "DestinationRuleSubsetNotSelectPods", Error}
	// UnimplementedField is weft's: a field Istio's API has and weft accepts
	// but does not act on yet (see config.UnimplementedFields). Istio has no
	// such code, as Istio implements its own API.
	UnimplementedField = Code{"WEFT0001", "UnimplementedField", Warning}
	// ProxylessIgnored: a VirtualService routing a gRPC service uses a
	// field proxyless gRPC clients (grpc-go's xDS client) do not honour.
	ProxylessIgnored = Code{"WEFT0002", "ProxylessGRPCIgnoredField", Info}
)

// DocURL is where the code is explained: Istio's page for IST codes, "" for weft's.
func (c Code) DocURL() string {
	if !strings.HasPrefix(c.ID, "IST") {
		return ""
	}
	return "https://istio.io/latest/docs/reference/config/analysis/" + strings.ToLower(c.ID) + "/"
}

// Message is one finding about one object.
type Message struct {
	Code Code
	// Resource is the object the message is about. It is zero for a
	// document that could not be read as an object (see Origin).
	Resource config.Key
	// Origin names the object as Istio does: "VirtualService default/reviews".
	Origin string
	// Text is the message itself, without level, code or origin.
	Text string
	// blocks is set on errors that make the control plane refuse an apply
	// (see Blocks).
	blocks bool
}

// String formats m as istioctl analyze prints it:
// `Error [IST0101] (VirtualService default/reviews) Referenced host not found: "reviewz"`.
func (m Message) String() string {
	return fmt.Sprintf("%s [%s] (%s) %s", m.Code.Level, m.Code.ID, m.Origin, m.Text)
}

// Blocks reports whether an apply of m's object must be refused: the
// object does not validate (IST0106), a Gateway conflicts with another one
// (IST0145), or a VirtualService of a service the registry knows sends its
// traffic to a host that does not exist (IST0101: requests that work now
// would fail). Other errors are reported but do not block an apply, because
// a later apply or a workload registering itself can fix them (a subset
// defined after its VirtualService, a service that has not started yet).
func (m Message) Blocks() bool { return m.blocks }

// messageJSON is Message as istioctl analyze -o json prints it.
type messageJSON struct {
	Code             string `json:"code"`
	DocumentationURL string `json:"documentationUrl,omitempty"`
	Level            string `json:"level"`
	Message          string `json:"message"`
	Origin           string `json:"origin"`
}

// MarshalJSON writes m as istioctl analyze -o json does.
func (m Message) MarshalJSON() ([]byte, error) {
	return json.Marshal(messageJSON{Code: m.Code.ID, DocumentationURL: m.Code.DocURL(),
		Level: m.Code.Level.String(), Message: m.Text, Origin: m.Origin})
}

// newMessage builds a message about o.
func newMessage(c Code, o *config.Object, format string, args ...any) Message {
	return Message{Code: c, Resource: o.Key(), Origin: o.Key().String(), Text: fmt.Sprintf(format, args...)}
}

// Analyze runs every check on objs (the whole config: networking objects,
// ServiceEntries and WorkloadEntries) and returns the messages sorted by
// level (errors first), code and origin. objs is not modified.
func Analyze(objs []*config.Object) []Message { return AnalyzeWith(objs, nil) }

// AnalyzeWith is Analyze with more services known besides those objs
// define: a platform's registry (Kubernetes Services), which wins where
// both have a host, as in the control plane.
func AnalyzeWith(objs []*config.Object, services *registry.Registry) []Message {
	out, _ := AnalyzeContext(context.Background(), objs, services)
	return out
}

// AnalyzeContext is AnalyzeWith that stops when ctx is done (the request
// that asked went away, or its time is up) and then returns ctx's error
// and no messages.
func AnalyzeContext(ctx context.Context, objs []*config.Object, services *registry.Registry) ([]Message, error) {
	sorted := append([]*config.Object(nil), objs...)
	sort.SliceStable(sorted, func(i, j int) bool { return keyLess(sorted[i].Key(), sorted[j].Key()) })
	a := newAnalyzer(sorted, services)
	for _, o := range sorted {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("analysis stopped: %w", context.Cause(ctx))
		}
		a.schema(o)
		a.unimplemented(o)
		switch o.Kind {
		case config.KindVirtualService:
			a.virtualService(o)
		case config.KindDestinationRule:
			a.destinationRule(o)
		}
	}
	a.conflictingGateways()
	out := dedupe(a.out)
	Sort(out)
	return out, nil
}

// dedupe drops repeated messages (two routes naming the same missing subset
// say it once).
func dedupe(msgs []Message) []Message {
	seen := make(map[string]bool, len(msgs))
	out := msgs[:0]
	for _, m := range msgs {
		if s := m.String(); !seen[s] {
			seen[s] = true
			out = append(out, m)
		}
	}
	return out
}

// Sort orders messages by level (errors first), code and origin, keeping
// the order of messages that tie.
func Sort(msgs []Message) {
	sort.SliceStable(msgs, func(i, j int) bool {
		a, b := msgs[i], msgs[j]
		if a.Code.Level != b.Code.Level {
			return a.Code.Level > b.Code.Level
		}
		if a.Code.ID != b.Code.ID {
			return a.Code.ID < b.Code.ID
		}
		return a.Origin < b.Origin
	})
}

// HasErrors reports whether any message is at Error level.
func HasErrors(msgs []Message) bool {
	for _, m := range msgs {
		if m.Code.Level == Error {
			return true
		}
	}
	return false
}

func keyLess(a, b config.Key) bool {
	if a.Kind != b.Kind {
		return a.Kind < b.Kind
	}
	if a.Namespace != b.Namespace {
		return a.Namespace < b.Namespace
	}
	return a.Name < b.Name
}

// analyzer holds the indexes the checks share.
type analyzer struct {
	reg      *registry.Registry
	hosts    hostIndex
	gateways map[string]*config.Object // "ns/name" -> Gateway
	drs      []*config.Object          // DestinationRules, sorted by key
	gwList   []*config.Object          // Gateways, sorted by key
	out      []Message
}

func newAnalyzer(objs []*config.Object, services *registry.Registry) *analyzer {
	reg := registry.Build(objs)
	if services != nil {
		reg = registry.Merge(services, reg)
	}
	a := &analyzer{reg: reg, gateways: map[string]*config.Object{}}
	a.hosts = newHostIndex(a.reg)
	for _, o := range objs {
		switch o.Kind {
		case config.KindGateway:
			a.gateways[o.Namespace+"/"+o.Name] = o
			a.gwList = append(a.gwList, o)
		case config.KindDestinationRule:
			a.drs = append(a.drs, o)
		}
	}
	return a
}

func (a *analyzer) report(m Message) { a.out = append(a.out, m) }

// schema reports what config.Validate finds (IST0106).
func (a *analyzer) schema(o *config.Object) {
	for _, e := range flatten(config.Validate(o)) {
		m := schemaMessage(e)
		m.Resource, m.Origin = o.Key(), o.Key().String()
		a.report(m)
	}
}

// unimplemented reports fields weft does not implement (WEFT0001).
func (a *analyzer) unimplemented(o *config.Object) {
	for _, u := range config.UnimplementedFields(o) {
		a.report(newMessage(UnimplementedField, o, "%s", u))
	}
}
