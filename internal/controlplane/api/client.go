package api

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/weft-mesh/weft/internal/config"
	"github.com/weft-mesh/weft/internal/controlplane/store"
	"github.com/weft-mesh/weft/internal/controlplane/xdsserver"
)

// DefaultAddress is the control plane API's default URL.
const DefaultAddress = "http://127.0.0.1:15014"

// Client talks to the control plane's HTTP API.
type Client struct {
	base  string
	http  *http.Client
	token string
}

// ClientOptions are a client's credentials.
type ClientOptions struct {
	// Token is sent as "Authorization: Bearer": the admin token or a
	// Kubernetes token.
	Token string
	// TLS configures an https API (its roots, an admin client certificate).
	TLS *tls.Config
}

// NewClient returns a client with no credential for the API at baseURL
// (e.g. http://127.0.0.1:15014): it may read but not change config.
func NewClient(baseURL string) *Client { return NewClientWith(baseURL, ClientOptions{}) }

// NewClientWith returns a client for the API at baseURL with opts' credentials.
func NewClientWith(baseURL string, opts ClientOptions) *Client {
	c := &http.Client{Timeout: 30 * time.Second}
	if opts.TLS != nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = opts.TLS
		c.Transport = tr
	}
	return &Client{base: strings.TrimRight(baseURL, "/"), http: c, token: opts.Token}
}

// Error is an error answered by the control plane.
type Error struct {
	StatusCode int
	Message    string
}

// Error implements error.
func (e *Error) Error() string { return e.Message }

// ErrUnreachable is wrapped by errors for a control plane that cannot be reached.
var ErrUnreachable = errors.New("control plane unreachable")

// unreachableError says that the control plane could not be reached and what to do.
type unreachableError struct {
	base string
	err  error
}

func (e *unreachableError) Error() string {
	return fmt.Sprintf("cannot reach the control plane at %s: %v; is `weft control-plane` running?", e.base, e.err)
}

func (e *unreachableError) Unwrap() []error { return []error{ErrUnreachable, e.err} }

// Apply applies the YAML documents in data, all or nothing. source names
// them (a file name) in error messages.
func (c *Client) Apply(ctx context.Context, source string, data []byte) ([]Result, error) {
	resp, err := c.ApplyChange(ctx, source, data)
	return resp.Results, err
}

// ApplyChange is Apply returning the whole answer, with the analysis
// warnings about the applied objects.
func (c *Client) ApplyChange(ctx context.Context, source string, data []byte) (ChangeResponse, error) {
	var resp ChangeResponse
	err := c.do(ctx, http.MethodPost, configURL(c.base, url.Values{"source": {source}}), data, &resp)
	return resp, err
}

// Delete deletes the objects named in the YAML documents in data. It returns
// the objects deleted; an error wrapping *Error with status 404 names those
// not found.
func (c *Client) Delete(ctx context.Context, source string, data []byte) ([]Result, error) {
	var resp ChangeResponse
	err := c.do(ctx, http.MethodDelete, configURL(c.base, url.Values{"source": {source}}), data, &resp)
	if err == nil && resp.Error != "" {
		err = &Error{StatusCode: http.StatusNotFound, Message: resp.Error}
	}
	return resp.Results, err
}

// Get returns the objects matching q.
func (c *Client) Get(ctx context.Context, q Query) ([]*config.Object, error) {
	var resp ConfigResponse
	if err := c.do(ctx, http.MethodGet, configURL(c.base, q.values()), nil, &resp); err != nil {
		return nil, err
	}
	return resp.Objects, nil
}

// GetYAML returns the objects matching q as Istio YAML.
func (c *Client) GetYAML(ctx context.Context, q Query) ([]byte, error) {
	v := q.values()
	v.Set("format", "yaml")
	var out []byte
	err := c.do(ctx, http.MethodGet, configURL(c.base, v), nil, &out)
	return out, err
}

// Proxies returns the connected proxies' sync status.
func (c *Client) Proxies(ctx context.Context) ([]xdsserver.ProxyStatus, error) {
	var resp ProxiesResponse
	if err := c.do(ctx, http.MethodGet, c.base+ProxiesPath, nil, &resp); err != nil {
		return nil, err
	}
	return resp.Proxies, nil
}

func (q Query) values() url.Values {
	v := url.Values{}
	for k, s := range map[string]string{"kind": q.Kind, "namespace": q.Namespace, "name": q.Name} {
		if s != "" {
			v.Set(k, s)
		}
	}
	return v
}

func configURL(base string, v url.Values) string {
	if len(v) == 0 {
		return base + ConfigPath
	}
	return base + ConfigPath + "?" + v.Encode()
}

// do sends a request and decodes the answer into out (a *[]byte takes it raw).
// A 404 of DELETE still decodes its body (the objects that were deleted).
func (c *Client) do(ctx context.Context, method, u string, body []byte, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return fmt.Errorf("building request to the control plane: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/yaml")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%s %s: %w", method, u, ctx.Err())
		}
		return &unreachableError{base: c.base, err: err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("reading the control plane's answer to %s %s: %w", method, u, err)
	}
	if resp.StatusCode == http.StatusNotFound && method == http.MethodDelete {
		return decode(data, out, method, u)
	}
	if resp.StatusCode != http.StatusOK {
		var e ErrorResponse
		if json.Unmarshal(data, &e) != nil || e.Error == "" {
			e.Error = fmt.Sprintf("%s %s: %s: %s", method, u, resp.Status, strings.TrimSpace(string(data)))
		}
		return &Error{StatusCode: resp.StatusCode, Message: e.Error}
	}
	return decode(data, out, method, u)
}

func decode(data []byte, out any, method, u string) error {
	if raw, ok := out.(*[]byte); ok {
		*raw = data
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decoding the control plane's answer to %s %s: %w", method, u, err)
	}
	return nil
}

// BaseURL returns the API's base URL.
func (c *Client) BaseURL() string { return c.base }

// History returns the config's revisions, newest first, without their
// objects; kind, namespace and name ("" any) pick those changing an object.
func (c *Client) History(ctx context.Context, kind, namespace, name string) ([]store.Revision, error) {
	v := url.Values{}
	for k, s := range map[string]string{"kind": kind, "namespace": namespace, "name": name} {
		if s != "" {
			v.Set(k, s)
		}
	}
	u := c.base + HistoryPath
	if len(v) > 0 {
		u += "?" + v.Encode()
	}
	var resp HistoryResponse
	err := c.do(ctx, http.MethodGet, u, nil, &resp)
	return resp.Revisions, err
}

// Diff returns the unified YAML diff of the config from revision from to
// revision to (0: now).
func (c *Client) Diff(ctx context.Context, from, to int64) (string, error) {
	v := url.Values{"from": {strconv.FormatInt(from, 10)}}
	if to != 0 {
		v.Set("to", strconv.FormatInt(to, 10))
	}
	var resp DiffResponse
	err := c.do(ctx, http.MethodGet, c.base+DiffPath+"?"+v.Encode(), nil, &resp)
	return resp.Diff, err
}

// Rollback writes the config of revision rev back, as a new revision.
func (c *Client) Rollback(ctx context.Context, rev int64) (RollbackResponse, error) {
	var resp RollbackResponse
	err := c.do(ctx, http.MethodPost, c.base+RollbackPath+"?revision="+strconv.FormatInt(rev, 10), nil, &resp)
	return resp, err
}
