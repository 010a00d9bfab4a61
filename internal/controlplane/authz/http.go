package authz

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
)

type userKey struct{}

// WithUser returns ctx carrying u as the caller, for a handler in front of
// the API (the console) that authenticated the request its own way.
func WithUser(ctx context.Context, u *User) context.Context {
	return context.WithValue(ctx, userKey{}, u)
}

// UserOf returns the caller of r: the user a handler in front put in its
// context (WithUser), else the one its credential proves (Authenticate).
func (a *Authorizer) UserOf(r *http.Request) (*User, error) {
	if u, ok := r.Context().Value(userKey{}).(*User); ok {
		return u, nil
	}
	return a.Authenticate(r)
}

// Check reports whether r's caller may do every action; if not, it has
// answered r: 401 for no or an invalid credential, 403 naming the missing
// permission, as JSON {"error": "..."}.
func (a *Authorizer) Check(w http.ResponseWriter, r *http.Request, acts ...Action) bool {
	u, err := a.UserOf(r)
	if err == nil {
		err = a.Authorize(r.Context(), u, acts...)
	}
	if err == nil {
		return true
	}
	WriteError(w, err)
	return false
}

// Status is the HTTP status of an error of Authenticate or Authorize.
func Status(err error) int {
	var forbidden *ForbiddenError
	switch {
	case errors.Is(err, ErrUnauthenticated):
		return http.StatusUnauthorized
	case errors.As(err, &forbidden):
		return http.StatusForbidden
	}
	return http.StatusServiceUnavailable // Kubernetes could not be asked
}

// WriteError answers an error of Authenticate or Authorize as JSON with its status.
func WriteError(w http.ResponseWriter, err error) {
	status := Status(err)
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="weft"`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(struct {
		Error string `json:"error"`
	}{err.Error()})
}
