package analyze

import (
	"errors"
	"strings"

	"github.com/weft-mesh/weft/internal/config"
)

// SchemaMessages turns an error of config.Parse or config.Validate into
// IST0106 messages, one per problem, so that a file that does not parse is
// reported like any other finding. Each message names the object the
// problem is in ("VirtualService default/reviews", or "FILE document N" when
// the document has no usable kind or name).
func SchemaMessages(err error) []Message {
	var out []Message
	for _, e := range flatten(err) {
		out = append(out, schemaMessage(e))
	}
	return out
}

// schemaMessage is one IST0106 message for e; the origin is e's object.
func schemaMessage(e error) Message {
	m := Message{Code: SchemaValidationError, blocks: true}
	var ce *config.Error
	if !errors.As(e, &ce) {
		m.Text = "Schema validation error: " + e.Error()
		return m
	}
	m.Origin = ce.Object
	if m.Origin == "" || !hasKey(ce.Object) {
		m.Origin = joinNonEmpty(ce.Source, ce.Object)
	} else if k, ok := parseKey(ce.Object); ok {
		m.Resource = k
	}
	m.Text = "Schema validation error: " + joinColon(ce.Path, ce.Reason)
	return m
}

// flatten returns the leaves of errors joined with errors.Join.
func flatten(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

// hasKey reports whether s reads "Kind namespace/name".
func hasKey(s string) bool {
	_, ok := parseKey(s)
	return ok
}

// parseKey reads "Kind namespace/name" (config.Key's String).
func parseKey(s string) (config.Key, bool) {
	var k config.Key
	sp := strings.IndexByte(s, ' ')
	if sp <= 0 {
		return k, false
	}
	rest := s[sp+1:]
	sl := strings.IndexByte(rest, '/')
	if sl <= 0 || sl == len(rest)-1 {
		return k, false
	}
	return config.Key{Kind: s[:sp], Namespace: rest[:sl], Name: rest[sl+1:]}, true
}

func joinNonEmpty(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + " " + b
}

func joinColon(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + ": " + b
}
