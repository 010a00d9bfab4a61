package dataplane

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"

	"github.com/weft-mesh/weft/internal/proxy/http1"
)

// escapedSlashes is what an HTTP connection manager does with %2F and %5C
// in a path (Envoy's path_with_escaped_slashes_action).
type escapedSlashes uint8

const (
	slashesKeep     escapedSlashes = iota // KEEP_UNCHANGED (and Envoy's default)
	slashesReject                         // REJECT_REQUEST: 400
	slashesUnescape                       // UNESCAPE_AND_FORWARD
)

// pathNorm is an HTTP connection manager's path normalization: Envoy's
// normalize_path, merge_slashes and path_with_escaped_slashes_action. The
// zero value changes nothing (Envoy's defaults).
type pathNorm struct {
	normalize bool // RFC 3986: decode unreserved escapes, "\" to "/", remove dot segments
	merge     bool // collapse runs of "/"
	slashes   escapedSlashes
}

// compilePathNorm reads the three fields of m. UNESCAPE_AND_REDIRECT is
// refused: weft proxy does not redirect for it.
func compilePathNorm(m *hcm.HttpConnectionManager) (pathNorm, error) {
	n := pathNorm{normalize: m.GetNormalizePath().GetValue(), merge: m.GetMergeSlashes()}
	switch a := m.GetPathWithEscapedSlashesAction(); a {
	case hcm.HttpConnectionManager_IMPLEMENTATION_SPECIFIC_DEFAULT, hcm.HttpConnectionManager_KEEP_UNCHANGED:
	case hcm.HttpConnectionManager_REJECT_REQUEST:
		n.slashes = slashesReject
	case hcm.HttpConnectionManager_UNESCAPE_AND_FORWARD:
		n.slashes = slashesUnescape
	default:
		return n, fmt.Errorf("path_with_escaped_slashes_action %s is not supported by weft proxy", a)
	}
	return n, nil
}

// apply normalizes the path of an origin-form target (path?query; the
// query is left as it is) and reports false when the request must be
// refused with 400 (an escaped slash under REJECT_REQUEST). A target that
// is already normal comes back as the same string, with no allocation;
// one that does not start with "/" (asterisk form) is left alone.
//
// The steps run in Envoy's order: escaped slashes, then RFC 3986
// normalization (percent-encoded unreserved characters decoded, other
// escapes kept as sent, "\" taken as "/", dot segments removed, ".."
// never climbing above the root), then merging slashes.
func (n pathNorm) apply(target string) (string, bool) {
	if n == (pathNorm{}) || target == "" || target[0] != '/' {
		return target, true
	}
	end := strings.IndexByte(target, '?')
	if end < 0 {
		end = len(target)
	}
	path := target[:end]
	if !n.needsWork(path) {
		return target, true
	}
	if n.slashes == slashesReject && hasEscapedSlash(path) {
		return target, false
	}
	b := n.decode(path)
	if n.normalize {
		b = removeDotSegments(b)
	}
	if n.merge {
		b = mergeSlashes(b)
	}
	return string(append(b, target[end:]...)), true
}

// applyH1 normalizes an HTTP/1 request's path in place before it is
// authorized, routed and sent upstream; false: answer 400.
func (n pathNorm) applyH1(req *http1.Request) bool {
	p, ok := n.apply(req.Path())
	if ok && p != req.Path() {
		req.SetPath(p)
	}
	return ok
}

// applyStd is applyH1 for a net/http (HTTP/2) request: it normalizes the
// path as received (RequestURI), not net/http's decoded URL.Path.
func (n pathNorm) applyStd(r *http.Request) bool {
	if n == (pathNorm{}) {
		return true
	}
	target := r.RequestURI
	if !strings.HasPrefix(target, "/") {
		target = (*stdRequest)(r).pathQuery()
	}
	p, ok := n.apply(target)
	if !ok || p == target {
		return ok
	}
	u, err := url.ParseRequestURI(p)
	if err != nil {
		return false
	}
	r.URL.Path, r.URL.RawPath, r.URL.RawQuery, r.RequestURI = u.Path, u.RawPath, u.RawQuery, p
	return true
}

// needsWork reports whether apply would change path or refuse it; it is
// the whole cost for a path that is already normal, so it searches with
// the strings package's vectorized scans rather than byte by byte.
func (n pathNorm) needsWork(path string) bool {
	if n.merge && strings.Contains(path, "//") {
		return true
	}
	if n.normalize {
		if strings.IndexByte(path, '\\') >= 0 {
			return true
		}
		for p := path; ; {
			i := strings.Index(p, "/.")
			if i < 0 {
				break
			}
			p = p[i+1:]
			if dotSegment(p, ".") || dotSegment(p, "..") {
				return true
			}
		}
	}
	if !n.normalize && n.slashes == slashesKeep {
		return false
	}
	for p := path; ; {
		i := strings.IndexByte(p, '%')
		if i < 0 {
			return false
		}
		p = p[i:]
		if v, ok := unhex(p, 0); ok {
			if v == '/' || v == '\\' {
				if n.slashes != slashesKeep {
					return true
				}
			} else if n.normalize && unreserved(v) {
				return true
			}
		}
		p = p[1:]
	}
}

// dotSegment reports whether rest (what follows a "/") starts with the
// segment seg.
func dotSegment(rest, seg string) bool {
	return strings.HasPrefix(rest, seg) && (len(rest) == len(seg) || rest[len(seg)] == '/')
}

func hasEscapedSlash(path string) bool {
	for i := 0; i < len(path); i++ {
		if v, ok := unhex(path, i); ok && (v == '/' || v == '\\') {
			return true
		}
	}
	return false
}

// decode copies path, unescaping what the options say (unreserved
// characters when normalizing, %2F and %5C under UNESCAPE_AND_FORWARD) and
// turning "\" into "/" when normalizing.
func (n pathNorm) decode(path string) []byte {
	b := make([]byte, 0, len(path)+1)
	for i := 0; i < len(path); i++ {
		c := path[i]
		if v, ok := unhex(path, i); ok {
			slash := v == '/' || v == '\\'
			if (slash && n.slashes == slashesUnescape) || (!slash && n.normalize && unreserved(v)) {
				c = v
				i += 2
			}
		}
		if c == '\\' && n.normalize {
			c = '/'
		}
		b = append(b, c)
	}
	return b
}

// removeDotSegments removes "." and ".." segments in place (RFC 3986
// section 5.2.4); b starts with "/".
func removeDotSegments(b []byte) []byte {
	w := 0
	for i := 0; i < len(b); {
		j := i + 1
		for j < len(b) && b[j] != '/' {
			j++
		}
		seg := b[i+1 : j]
		last := j == len(b)
		switch {
		case len(seg) == 1 && seg[0] == '.':
		case len(seg) == 2 && seg[0] == '.' && seg[1] == '.':
			for w > 0 && b[w-1] != '/' {
				w--
			}
			if w > 0 {
				w-- // the "/" before the removed segment
			}
		default:
			w += copy(b[w:], b[i:j])
			i = j
			continue
		}
		if last {
			b[w] = '/'
			w++
		}
		i = j
	}
	if w == 0 {
		b = append(b[:0], '/')
		return b
	}
	return b[:w]
}

// mergeSlashes collapses runs of "/" in place.
func mergeSlashes(b []byte) []byte {
	w := 0
	for _, c := range b {
		if c == '/' && w > 0 && b[w-1] == '/' {
			continue
		}
		b[w] = c
		w++
	}
	return b[:w]
}

// unhex decodes the escape "%XX" at s[i], if there is one.
func unhex(s string, i int) (byte, bool) {
	if s[i] != '%' || i+2 >= len(s) {
		return 0, false
	}
	hi, ok1 := fromHex(s[i+1])
	lo, ok2 := fromHex(s[i+2])
	return hi<<4 | lo, ok1 && ok2
}

func fromHex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// unreserved reports whether c is an RFC 3986 unreserved character, whose
// escape means the same as the character itself.
func unreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}
