package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestSections: the control-plane bench replaces only its own section,
// and the data-plane bench rewrites the file around the sections.
func TestSections(t *testing.T) {
	path := filepath.Join(t.TempDir(), "RESULTS.md")
	steps := []struct {
		name string
		do   func() error
		want string
	}{
		{"data plane first", func() error { return writeKeepingSections(path, "# data plane v1\n") }, "# data plane v1\n"},
		{"a control-plane section", func() error { return writeSection(path, "cp 1", "one\n") },
			"# data plane v1\n\n<!-- begin cp 1 -->\none\n<!-- end cp 1 -->\n"},
		{"another one", func() error { return writeSection(path, "cp 2", "two\n") },
			"# data plane v1\n\n<!-- begin cp 1 -->\none\n<!-- end cp 1 -->\n\n<!-- begin cp 2 -->\ntwo\n<!-- end cp 2 -->\n"},
		{"the first replaced", func() error { return writeSection(path, "cp 1", "uno\n") },
			"# data plane v1\n\n<!-- begin cp 1 -->\nuno\n<!-- end cp 1 -->\n\n<!-- begin cp 2 -->\ntwo\n<!-- end cp 2 -->\n"},
		{"data plane again keeps both", func() error { return writeKeepingSections(path, "# data plane v2\n") },
			"# data plane v2\n\n<!-- begin cp 1 -->\nuno\n<!-- end cp 1 -->\n\n<!-- begin cp 2 -->\ntwo\n<!-- end cp 2 -->\n"},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != st.want {
			t.Errorf("%s:\n%q\nwant\n%q", st.name, got, st.want)
		}
	}
}
