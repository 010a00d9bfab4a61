package config

import (
	"errors"
	"strings"
)

// ErrUnsupportedKind is wrapped by errors for documents whose kind or
// apiVersion weft does not know (e.g. a Kubernetes Deployment).
var ErrUnsupportedKind = errors.New("unsupported kind")

// Error is one problem in a config object: where it is and what is wrong.
// Its text reads "SOURCE: OBJECT: PATH: REASON", leaving out empty parts.
type Error struct {
	// Source is the file name (or "api") the object came from.
	Source string
	// Object is "Kind namespace/name", or "document N" when the object has no name.
	Object string
	// Path is the field path, e.g. "spec.http[0].route[0].destination.host".
	Path string
	// Reason says what is wrong.
	Reason string
	// Err is a wrapped cause such as ErrUnsupportedKind, if any.
	Err error
}

// Error implements error.
func (e *Error) Error() string {
	parts := make([]string, 0, 4)
	for _, p := range []string{e.Source, e.Object, e.Path, e.Reason} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, ": ")
}

// Unwrap returns the wrapped cause.
func (e *Error) Unwrap() error { return e.Err }

// fieldErrors collects errors found in one object.
type fieldErrors struct {
	source, object string
	errs           []error
}

// add records a problem at path.
func (f *fieldErrors) add(path, reason string) {
	f.errs = append(f.errs, &Error{Source: f.source, Object: f.object, Path: path, Reason: reason})
}

// addErr records a problem at path that wraps cause.
func (f *fieldErrors) addErr(path, reason string, cause error) {
	f.errs = append(f.errs, &Error{Source: f.source, Object: f.object, Path: path, Reason: reason, Err: cause})
}

// err returns all recorded problems joined, or nil.
func (f *fieldErrors) err() error { return errors.Join(f.errs...) }
