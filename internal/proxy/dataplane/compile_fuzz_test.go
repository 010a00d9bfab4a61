package dataplane

import (
	"bytes"
	"net/http/httptest"
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

	"github.com/weft-mesh/weft/internal/proxy/http1"
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
		rt, err := compile(cfg, &state{})
		if err != nil {
			return
		}
		exercise(rt)
	})
}

// exercise runs what the request path does with an accepted config: host
// and route matching, picking a destination, redirects, faults, header
// edits and endpoint picks, which must not panic either.
func exercise(rt *runtime) {
	tables := make([]*rtable, 0, len(rt.routes))
	for _, t := range rt.routes {
		tables = append(tables, t)
	}
	for _, l := range rt.listeners {
		for _, c := range l.chains {
			if c.inline != nil {
				tables = append(tables, c.inline)
			}
			_, _ = c.norm.apply("/a/../b")
		}
	}
	req := httptest.NewRequest("GET", "http://svc:9080/api/v1/x?user=jason", nil)
	req.Header.Set("end-user", "jason")
	req.Header.Set("cookie", "session=1")
	for _, t := range tables {
		vhosts := []*rvhost{t.star, t.vhost("svc:9080"), t.vhost("a.example.com")}
		for _, vh := range t.exact {
			vhosts = append(vhosts, vh)
		}
		for _, vh := range vhosts {
			if vh == nil {
				continue
			}
			_ = vh.route((*stdRequest)(req))
			for _, r := range vh.routes {
				_ = r.matches((*stdRequest)(req), "/api/v1/x?user=jason", "/api/v1/x", "user=jason")
				switch {
				case r.redirect != nil:
					_ = r.redirect.location("http", "svc:9080", "/api/v1/x?user=jason")
				case r.direct == nil:
					_ = r.pick()
				}
				if r.fault != nil {
					_ = r.fault.roll()
				}
				h := http1.Header{{Name: "x-a", Value: "1"}}
				r.reqHeaders.apply(&h)
				r.respHeaders.apply(&h)
				if r.rewrite != nil {
					_, _ = r.rewrite.path(r, "/api/v1/x?user=jason")
				}
			}
		}
	}
	for _, cl := range rt.clusters {
		if cl.kind == "original_dst" {
			continue // passed through to the original destination, never picked
		}
		_, _ = cl.pickFor(&rroute{}, (*stdRequest)(req), "127.0.0.1:1234")
	}
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
