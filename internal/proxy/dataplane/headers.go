package dataplane

import (
	"fmt"
	"strings"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/weft-mesh/weft/internal/proxy/http1"
)

// headerEdit sets (replacing) or appends one header.
type headerEdit struct {
	name, value string
	append      bool
}

// headerEdits are the header changes a route makes to requests or responses.
type headerEdits struct {
	edits  []headerEdit
	remove []string
}

func (e *headerEdits) empty() bool { return e == nil || (len(e.edits) == 0 && len(e.remove) == 0) }

// compileHeaders reads Envoy's headers_to_add / headers_to_remove; values
// with command operators (%…%) are refused, weft does not expand them.
func compileHeaders(field string, add []*core.HeaderValueOption, remove []string) (*headerEdits, error) {
	e := &headerEdits{remove: remove}
	for _, o := range add {
		h := o.GetHeader()
		if h.GetKey() == "" {
			return nil, fmt.Errorf("%s: a header has no key", field)
		}
		if strings.Contains(h.GetValue(), "%") {
			return nil, fmt.Errorf("%s %q: command operators (%%…%%) are not supported by weft proxy", field, h.GetKey())
		}
		app := o.GetAppendAction() == core.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD
		if o.GetAppend() != nil {
			app = o.GetAppend().GetValue()
		}
		switch o.GetAppendAction() {
		case core.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD, core.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD:
		default:
			return nil, fmt.Errorf("%s %q: append_action %s is not supported", field, h.GetKey(), o.GetAppendAction())
		}
		e.edits = append(e.edits, headerEdit{name: strings.ToLower(h.GetKey()), value: h.GetValue(), append: app})
	}
	if e.empty() {
		return nil, nil
	}
	return e, nil
}

func compileRouteHeaders(out *rroute, r *route.Route) error {
	var err error
	if out.reqHeaders, err = compileHeaders("request_headers_to_add", r.GetRequestHeadersToAdd(), r.GetRequestHeadersToRemove()); err != nil {
		return err
	}
	out.respHeaders, err = compileHeaders("response_headers_to_add", r.GetResponseHeadersToAdd(), r.GetResponseHeadersToRemove())
	out.modifyResp = out.respHeaders.responseModifier()
	return err
}

// headerSetter is what both header types offer: net/http's http.Header and
// the HTTP/1.1 engine's *http1.Header.
type headerSetter interface {
	Add(name, value string)
	Set(name, value string)
	Del(name string)
}

// apply edits h: removals first, then sets and appends.
func (e *headerEdits) apply(h headerSetter) {
	if e.empty() {
		return
	}
	for _, name := range e.remove {
		h.Del(name)
	}
	for _, ed := range e.edits {
		if ed.append {
			h.Add(ed.name, ed.value)
		} else {
			h.Set(ed.name, ed.value)
		}
	}
}

// responseModifier returns the HTTP/1.1 engine's hook for these edits (nil: none).
func (e *headerEdits) responseModifier() func(*http1.Response) {
	if e.empty() {
		return nil
	}
	return func(resp *http1.Response) { e.apply(&resp.Header) }
}

// then returns e followed by next (either may be nil); e is not changed.
func (e *headerEdits) then(next *headerEdits) *headerEdits {
	switch {
	case next.empty():
		return e
	case e.empty():
		return next
	}
	return &headerEdits{
		remove: append(append([]string(nil), e.remove...), next.remove...),
		edits:  append(append([]headerEdit(nil), e.edits...), next.edits...),
	}
}
