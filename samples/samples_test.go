package samples

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/weft-mesh/weft/internal/config"
)

// referenceDir holds Istio's own samples, when the repository sits beside them.
const referenceDir = "../../shared/istio-samples"

// reference maps a sample of ours to the path of Istio's copy under referenceDir.
func reference(rel string) string {
	switch {
	case rel == "bookinfo/platform/kube/bookinfo.yaml":
		return "bookinfo/platform-kube-bookinfo.yaml"
	case strings.HasPrefix(rel, "bookinfo/networking/"):
		return "bookinfo/" + strings.TrimPrefix(rel, "bookinfo/networking/")
	default:
		return rel
	}
}

// ours lists every YAML sample in this directory, as slash paths relative to it.
func ours(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, ".yaml") {
			files = append(files, filepath.ToSlash(p))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 20 {
		t.Fatalf("found only %d samples: %v", len(files), files)
	}
	return files
}

// TestSamplesParse checks that weft accepts every Istio object in every sample.
func TestSamplesParse(t *testing.T) {
	for _, f := range ours(t) {
		t.Run(f, func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			objs, err := config.ParseWith(f, data, config.ParseOptions{SkipForeign: true})
			if err != nil {
				t.Fatalf("weft refuses %s: %v", f, err)
			}
			if !strings.Contains(f, "platform/") && !strings.HasSuffix(f, "-services.yaml") && f != "helloworld/helloworld.yaml" && len(objs) == 0 {
				t.Fatalf("%s holds no Istio object", f)
			}
		})
	}
}

// TestSamplesMatchIstio checks that every sample says what Istio's copy of
// the same name says: the same documents, field for field.
func TestSamplesMatchIstio(t *testing.T) {
	if _, err := os.Stat(referenceDir); err != nil {
		t.Skipf("Istio's reference samples are not beside the repository (%s): %v", referenceDir, err)
	}
	for _, f := range ours(t) {
		t.Run(f, func(t *testing.T) {
			got := documents(t, f)
			want := documents(t, filepath.Join(referenceDir, reference(f)))
			if len(got) != len(want) {
				t.Fatalf("%s has %d documents, Istio's %s has %d", f, len(got), reference(f), len(want))
			}
			for i := range want {
				if !reflect.DeepEqual(got[i], want[i]) {
					g, _ := json.MarshalIndent(got[i], "", " ")
					w, _ := json.MarshalIndent(want[i], "", " ")
					t.Errorf("%s document %d differs from Istio's:\nours:  %s\nIstio: %s", f, i, g, w)
				}
			}
		})
	}
}

// documents reads a multi-document YAML file into generic values, skipping
// empty documents.
func documents(t *testing.T, path string) []any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var docs []any
	for i, part := range bytes.Split(append([]byte("\n"), data...), []byte("\n---")) {
		js, err := yaml.YAMLToJSON(part)
		if err != nil {
			t.Fatalf("%s document %d: %v", path, i, err)
		}
		var v any
		if err := json.Unmarshal(js, &v); err != nil {
			t.Fatalf("%s document %d: %v", path, i, err)
		}
		if v != nil {
			docs = append(docs, v)
		}
	}
	if len(docs) == 0 {
		t.Fatal(fmt.Errorf("%s holds no document", path))
	}
	return docs
}
