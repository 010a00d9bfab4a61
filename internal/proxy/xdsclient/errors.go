package xdsclient

import (
	"errors"
	"fmt"
)

// ErrorKind classifies an Error.
type ErrorKind int

// Kinds of Error.
const (
	// KindConnect: the management server could not be reached or the
	// stream broke. The client retries with back-off.
	KindConnect ErrorKind = iota + 1
	// KindDecode: a response held a resource the client could not decode
	// (wrong type, malformed, unnamed). The response is NACKed.
	KindDecode
	// KindRejected: the Handler refused the update. The response is NACKed.
	KindRejected
	// KindProtocol: the server sent something the protocol does not allow
	// (a type the client did not subscribe to). The response is NACKed.
	KindProtocol
)

// String names the kind.
func (k ErrorKind) String() string {
	switch k {
	case KindConnect:
		return "connect"
	case KindDecode:
		return "decode"
	case KindRejected:
		return "rejected"
	case KindProtocol:
		return "protocol"
	}
	return fmt.Sprintf("ErrorKind(%d)", int(k))
}

// Error is an error of the client, with its kind and the type URL it
// concerns (empty for connection errors). Check it with errors.As.
type Error struct {
	Kind    ErrorKind
	TypeURL string
	Err     error
}

// Error formats the error with its kind and type.
func (e *Error) Error() string {
	if e.TypeURL == "" {
		return fmt.Sprintf("xds %s: %v", e.Kind, e.Err)
	}
	return fmt.Sprintf("xds %s %s: %v", e.Kind, shortType(e.TypeURL), e.Err)
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// IsKind reports whether err is an *Error of kind k.
func IsKind(err error, k ErrorKind) bool {
	var e *Error
	return errors.As(err, &e) && e.Kind == k
}

func newError(k ErrorKind, typeURL string, err error) *Error {
	return &Error{Kind: k, TypeURL: typeURL, Err: err}
}
