//go:build linux

package memtrim

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const sample = `00400000-00f91000 r-xp 00000000 fd:01 123 /usr/local/bin/weft-proxy
Size:              11844 kB
Rss:               10368 kB
Anonymous:             0 kB
00f91000-01f03000 r--p 00b91000 fd:01 123 /usr/local/bin/weft-proxy
Size:              15816 kB
Rss:               10688 kB
Anonymous:             0 kB
01f03000-01fa1000 rw-p 01b03000 fd:01 123 /usr/local/bin/weft-proxy
Rss:                 552 kB
Anonymous:           120 kB
02000000-02001000 r--p 01b03000 fd:01 123 /usr/local/bin/weft-proxy
Rss:                   4 kB
Anonymous:             4 kB
7f0000000000-7f0000100000 r-xp 00000000 fd:01 456 /usr/lib/x86_64-linux-gnu/libc.so.6
Rss:                 796 kB
Anonymous:             0 kB
7f0000200000-7f0000300000 rw-p 00000000 00:00 0
Rss:               10260 kB
Anonymous:         10260 kB
`

func TestReadOnlyMappings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, path string
		want       []mapping
	}{
		{"code and read-only data; not the data, not a copied page, not libc", "/usr/local/bin/weft-proxy", []mapping{
			{start: 0x400000, end: 0xf91000, rss: 10368 << 10},
			{start: 0xf91000, end: 0x1f03000, rss: 10688 << 10},
		}},
		{"another binary", "/usr/local/bin/weft", nil},
	}
	for _, tt := range tests {
		got := readOnlyMappings([]byte(sample), tt.path)
		if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(mapping{})); diff != "" {
			t.Errorf("%s: (-want +got)\n%s", tt.name, diff)
		}
	}
}

// rssFile is this process's RssFile in kB.
func rssFile(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "RssFile:"); ok {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no RssFile in /proc/self/status")
	return 0
}

// TestBinary trims this test binary: its file-backed pages go down and it
// runs on (the pages come back from the page cache).
func TestBinary(t *testing.T) {
	before := rssFile(t)
	st, err := Binary()
	if err != nil {
		t.Fatal(err)
	}
	after := rssFile(t)
	if st.Mappings < 2 || st.Dropped <= 0 {
		t.Errorf("Binary() = %+v, want the code and read-only data mappings dropped", st)
	}
	if after >= before {
		t.Errorf("RssFile %d kB before, %d kB after: nothing handed back", before, after)
	}
	if got := strings.Repeat("ok", 2); got != "okok" { // code runs from refaulted pages
		t.Errorf("after trimming: %q", got)
	}
}
