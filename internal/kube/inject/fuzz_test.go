package inject

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzDocuments: any input is injected or refused with an error, never a
// panic; what is written reads back, and injecting it again changes nothing.
func FuzzDocuments(f *testing.F) {
	for _, name := range []string{"bookinfo.yaml", "workloads.yaml"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("apiVersion: v1\nkind: Pod\nmetadata:\n  annotations: {traffic.sidecar.istio.io/excludeInboundPorts: '1,2'}\nspec: {}\n"))
	f.Add([]byte("apiVersion: v1\nkind: List\nitems: [{apiVersion: v1, kind: List}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var out bytes.Buffer
		if _, err := Documents(bytes.NewReader(data), &out, testSettings(), true); err != nil {
			if out.Len() > 0 {
				t.Fatalf("wrote output despite %v", err)
			}
			return
		}
		var again bytes.Buffer
		if _, err := Documents(bytes.NewReader(out.Bytes()), &again, testSettings(), true); err != nil {
			t.Fatalf("the output does not read back: %v\n%s", err, out.Bytes())
		}
		if !bytes.Equal(out.Bytes(), again.Bytes()) {
			t.Fatalf("injecting twice changed the output:\n%s\n---- then ----\n%s", out.Bytes(), again.Bytes())
		}
	})
}
