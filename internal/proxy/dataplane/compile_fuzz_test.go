package dataplane

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"sigs.k8s.io/yaml"
)

// xdsKinds are the resource types FuzzCompile decodes, by the input's
// kind byte (modulo their number), in the order of the golden files'
// sections.
var xdsKinds = []struct {
	section string
	newMsg  func() proto.Message
	put     func(*config, proto.Message)
}{
	{"# listeners", func() proto.Message { return &listener.Listener{} },
		func(c *config, m proto.Message) { c.listeners["fuzz"] = m.(*listener.Listener) }},
	{"# routes", func() proto.Message { return &route.RouteConfiguration{} },
		func(c *config, m proto.Message) { c.routes["fuzz"] = m.(*route.RouteConfiguration) }},
	{"# clusters", func() proto.Message { return &cluster.Cluster{} },
		func(c *config, m proto.Message) { c.clusters["fuzz"] = m.(*cluster.Cluster) }},
	{"# endpoints", func() proto.Message { return &endpoint.ClusterLoadAssignment{} },
		func(c *config, m proto.Message) { c.endpoints["fuzz"] = m.(*endpoint.ClusterLoadAssignment) }},
}

// FuzzCompile decodes arbitrary bytes as a received LDS, RDS, CDS or EDS
// resource (as the xDS client's decoders do) and compiles it: a resource
// weft cannot honour must be refused with an error (a NACK), never a
// panic. The seeds are every resource of the control plane's golden files.
func FuzzCompile(f *testing.F) {
	goldens, _ := filepath.Glob("../../controlplane/translate/testdata/*.golden.yaml")
	for _, g := range goldens {
		data, err := os.ReadFile(g)
		if err != nil {
			f.Fatal(err)
		}
		for _, s := range goldenDocs(data) {
			m := xdsKinds[s.kind].newMsg()
			if err := protojson.Unmarshal(s.json, m); err != nil {
				continue
			}
			b, err := proto.Marshal(m)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(uint8(s.kind), b)
		}
	}
	f.Fuzz(func(t *testing.T, kind uint8, data []byte) {
		k := xdsKinds[int(kind)%len(xdsKinds)]
		m := k.newMsg()
		if err := proto.Unmarshal(data, m); err != nil {
			return
		}
		cfg := &config{
			listeners: map[string]*listener.Listener{}, routes: map[string]*route.RouteConfiguration{},
			clusters: map[string]*cluster.Cluster{}, endpoints: map[string]*endpoint.ClusterLoadAssignment{},
		}
		k.put(cfg, m)
		_, _ = compile(cfg, &state{})
	})
}

type goldenDoc struct {
	kind int
	json []byte
}

// goldenDocs splits a golden xDS file into its YAML documents, each as JSON
// with the kind of the "# listeners" (...) section it is in.
func goldenDocs(data []byte) []goldenDoc {
	var out []goldenDoc
	kind := -1
	var doc []byte
	flush := func() {
		if kind >= 0 && len(bytes.TrimSpace(doc)) > 0 {
			if js, err := yaml.YAMLToJSON(doc); err == nil {
				out = append(out, goldenDoc{kind, js})
			}
		}
		doc = doc[:0]
	}
	for _, line := range bytes.SplitAfter(data, []byte("\n")) {
		switch t := string(bytes.TrimSpace(line)); {
		case t == "---":
			flush()
		case len(line) > 2 && line[0] == '#':
			flush()
			for i, k := range xdsKinds {
				if t == k.section {
					kind = i
				}
			}
		default:
			doc = append(doc, line...)
		}
	}
	flush()
	return out
}
