package api

import (
	"bufio"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/weft-mesh/weft/internal/controlplane/authz"
	"github.com/weft-mesh/weft/internal/controlplane/ca"
	"github.com/weft-mesh/weft/internal/controlplane/xdsserver"
	"github.com/weft-mesh/weft/internal/tap"
)

// TapPath streams live requests of a workload's or a service's proxies:
// GET ?target=NAME[&namespace=NS][&path=P][&method=M][&authority=A][&max=N]
// answers tap.Event JSON lines until max events, the caller leaves, or
// every proxy's stream ended. A proxy that cannot be tapped is reported
// as a line with only proxy and error.
const TapPath = "/api/v1/tap"

// TapAction is the permission a tap needs: it shows live traffic, so the
// admin may, and on Kubernetes RBAC can grant it (create taps.weft.io in
// the namespace).
func TapAction(ns string) authz.Action {
	return authz.Action{Verb: authz.VerbCreate, Group: "weft.io", Resource: "taps", Namespace: ns}
}

// tapTokenTTL is how long a proxy accepts a tap token (it is checked when
// the tap attaches).
const tapTokenTTL = 2 * time.Minute

// TapOptions configure MountTap.
type TapOptions struct {
	// Proxies lists the connected proxies (xdsserver.Server.Proxies).
	Proxies func() []xdsserver.ProxyStatus
	// Signer is the mesh CA: it certifies the key tap tokens are signed with.
	Signer CertSigner
	// Authorizer decides who may tap; nil: nobody may.
	Authorizer *authz.Authorizer
	Logger     *slog.Logger
}

// MountTap serves GET /api/v1/tap in front of next.
func MountTap(next http.Handler, opts TapOptions) http.Handler {
	if opts.Authorizer == nil {
		opts.Authorizer = authz.New(authz.Options{})
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	t := &tapper{opts: opts, log: opts.Logger.With("component", "tap"), client: &http.Client{}}
	mux := http.NewServeMux()
	mux.Handle("/", next)
	mux.HandleFunc("GET "+TapPath, t.serve)
	return mux
}

type tapper struct {
	opts   TapOptions
	log    *slog.Logger
	client *http.Client
}

// tapTargets returns the proxies of target: a workload (or proxy) name, or
// a service (its name or app label), in namespace ns ("": any).
func tapTargets(proxies []xdsserver.ProxyStatus, target, ns string) []xdsserver.ProxyStatus {
	var out []xdsserver.ProxyStatus
	for _, p := range proxies {
		if p.Type == xdsserver.TypeProxyless || (ns != "" && p.Namespace != ns) {
			continue
		}
		if p.Name == target || p.Workload == target || p.Labels["app"] == target || (p.Service != nil && p.Service.Name == target) {
			out = append(out, p)
		}
	}
	return out
}

func (t *tapper) serve(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	target, ns := q.Get("target"), q.Get("namespace")
	if target == "" {
		writeError(w, http.StatusBadRequest, errors.New("tap: name a workload or a service (?target=)"))
		return
	}
	if !t.opts.Authorizer.Check(w, r, TapAction(ns)) {
		t.log.Info("refused a tap", "remote", r.RemoteAddr, "target", target)
		return
	}
	max := 0
	if v := q.Get("max"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, fmt.Errorf("tap: max %q: want a number of requests", v))
			return
		}
		max = n
	}
	proxies := tapTargets(t.opts.Proxies(), target, ns)
	if len(proxies) == 0 {
		writeError(w, http.StatusNotFound, fmt.Errorf("tap: no connected proxy of a workload or service named %q (see weft proxy-status)", target))
		return
	}
	key, chain, err := t.credential()
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, err)
		return
	}
	user := ""
	if u, _ := t.opts.Authorizer.UserOf(r); u != nil {
		user = u.Name
	}
	t.log.Info("tap", "user", user, "target", target, "namespace", ns, "proxies", len(proxies))

	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	filter := tap.FilterFrom(q).Query(max) // each proxy stops after max too
	events := make(chan tap.Event)
	var wg sync.WaitGroup
	for _, p := range proxies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := p.Name + "." + p.Namespace
			if err := t.follow(ctx, p, key, chain, filter, name, events); err != nil && ctx.Err() == nil {
				select {
				case events <- tap.Event{Proxy: name, Error: err.Error()}:
				case <-ctx.Done():
				}
			}
		}()
	}
	go func() { wg.Wait(); close(events) }()

	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	enc := json.NewEncoder(w)
	for n := 0; max == 0 || n < max; {
		e, ok := <-events
		if !ok {
			return
		}
		if err := enc.Encode(&e); err != nil {
			return
		}
		_ = rc.Flush()
		if e.Error == "" {
			n++
		}
	}
	cancel()
	go func() { // let the followers see the cancel and leave
		for range events {
		}
	}()
}

// credential makes a key and has the mesh CA certify it for the admin
// identity, for this tap's tokens.
func (t *tapper) credential() (crypto.Signer, []*x509.Certificate, error) {
	if t.opts.Signer == nil {
		return nil, nil, errors.New("tap: the control plane has no CA to sign tap tokens with")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("tap: key: %w", err)
	}
	id, err := url.Parse(authz.AdminIdentity.String())
	if err != nil {
		return nil, nil, fmt.Errorf("tap: %w", err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{URIs: []*url.URL{id}}, key)
	if err != nil {
		return nil, nil, fmt.Errorf("tap: CSR: %w", err)
	}
	pemChain, err := t.opts.Signer.Sign(csr, authz.AdminIdentity, time.Hour)
	if err != nil {
		return nil, nil, fmt.Errorf("tap: certifying the tap key: %w", err)
	}
	chain, err := ca.ParseCerts(pemChain)
	if err != nil {
		return nil, nil, fmt.Errorf("tap: %w", err)
	}
	return key, chain, nil
}

// follow streams one proxy's tap into events until it ends or ctx does.
func (t *tapper) follow(ctx context.Context, p xdsserver.ProxyStatus, key crypto.Signer, chain []*x509.Certificate, q url.Values, name string, events chan<- tap.Event) error {
	if p.AdminAddress == "" {
		return errors.New("the proxy did not announce its admin address")
	}
	tok, err := tap.Sign(key, chain, p.ID, time.Now().Add(tapTokenTTL))
	if err != nil {
		return err
	}
	u := "http://" + p.AdminAddress + "/tap?" + q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := t.client.Do(req)
	if err != nil {
		return fmt.Errorf("reaching the proxy's admin port: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("the proxy refused the tap: %s: %s", resp.Status, strings.TrimSpace(string(msg)))
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var e tap.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return fmt.Errorf("reading the proxy's tap: %w", err)
		}
		e.Proxy, e.Error = name, ""
		select {
		case events <- e:
		case <-ctx.Done():
			return nil
		}
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil {
		return fmt.Errorf("reading the proxy's tap: %w", err)
	}
	return nil
}

// TapRequest names what a tap watches.
type TapRequest struct {
	// Target is a workload, proxy or service name; Namespace narrows it ("": any).
	Target, Namespace string
	Filter            tap.Filter
	// Max stops the tap after so many requests (0: until ctx ends).
	Max int
}

// Tap streams live requests of req's proxies to fn until Max requests,
// ctx ends, or fn returns an error. Lines reporting a proxy that could
// not be tapped reach fn too (Event.Error set).
func (c *Client) Tap(ctx context.Context, req TapRequest, fn func(tap.Event) error) error {
	q := req.Filter.Query(req.Max)
	q.Set("target", req.Target)
	if req.Namespace != "" {
		q.Set("namespace", req.Namespace)
	}
	u := c.base + TapPath + "?" + q.Encode()
	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("building request to the control plane: %w", err)
	}
	if c.token != "" {
		hreq.Header.Set("Authorization", "Bearer "+c.token)
	}
	stream := *c.http
	stream.Timeout = 0 // a tap lasts as long as the caller wants
	resp, err := stream.Do(hreq)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return &unreachableError{base: c.base, err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		var e ErrorResponse
		if json.Unmarshal(data, &e) != nil || e.Error == "" {
			e.Error = fmt.Sprintf("GET %s: %s: %s", u, resp.Status, strings.TrimSpace(string(data)))
		}
		return &Error{StatusCode: resp.StatusCode, Message: e.Error}
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var e tap.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return fmt.Errorf("reading the tap: %w", err)
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil {
		return fmt.Errorf("reading the tap: %w", err)
	}
	return nil
}
