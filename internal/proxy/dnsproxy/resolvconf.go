package dnsproxy

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
)

// ResolvConf is what weft uses of resolv.conf(5).
type ResolvConf struct {
	Nameservers []netip.Addr
	Search      []string
}

// ReadResolvConf reads a resolv.conf file.
func ReadResolvConf(path string) (ResolvConf, error) {
	f, err := os.Open(path)
	if err != nil {
		return ResolvConf{}, fmt.Errorf("reading %s: %w", path, err)
	}
	defer f.Close()
	rc, err := ParseResolvConf(f)
	if err != nil {
		return rc, fmt.Errorf("reading %s: %w", path, err)
	}
	return rc, nil
}

// ParseResolvConf parses the nameserver and search (or domain) lines; the
// last search/domain line wins, as in glibc. Unparsable name servers are
// skipped.
func ParseResolvConf(r io.Reader) (ResolvConf, error) {
	var rc ResolvConf
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexAny(line, "#;"); i >= 0 {
			line = line[:i]
		}
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		switch fields[0] {
		case "nameserver":
			// A zone ("fe80::1%eth0") stays on the address.
			if a, err := netip.ParseAddr(fields[1]); err == nil {
				rc.Nameservers = append(rc.Nameservers, a)
			}
		case "search", "domain":
			rc.Search = nil
			for _, s := range fields[1:] {
				rc.Search = append(rc.Search, strings.TrimSuffix(strings.ToLower(s), "."))
			}
		}
	}
	return rc, sc.Err()
}
