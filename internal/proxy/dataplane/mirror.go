package dataplane

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"time"

	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/weft-mesh/weft/internal/proxy/http1"
)

// rmirror is a compiled request mirror policy.
type rmirror struct {
	cluster string
	share   uint32 // per million
}

// mirrorTimeout bounds a shadow request; nobody waits for it.
const mirrorTimeout = 15 * time.Second

func compileMirrors(ra *route.RouteAction) ([]rmirror, error) {
	var out []rmirror
	for i, m := range ra.GetRequestMirrorPolicies() {
		if m.GetCluster() == "" {
			return nil, fmt.Errorf("request_mirror_policies[%d]: only a fixed cluster is supported", i)
		}
		if m.GetRuntimeFraction().GetRuntimeKey() != "" && m.GetRuntimeFraction().GetDefaultValue() == nil {
			return nil, fmt.Errorf("request_mirror_policies[%d]: runtime keys are not supported", i)
		}
		share := uint32(1_000_000)
		if rf := m.GetRuntimeFraction(); rf != nil {
			share = perMillion(rf.GetDefaultValue())
		}
		out = append(out, rmirror{cluster: m.GetCluster(), share: share})
	}
	return out, nil
}

// shadowHost is Envoy's shadow authority: "-shadow" after the host, before any port.
func shadowHost(authority string) string {
	if host, port, err := net.SplitHostPort(authority); err == nil {
		return net.JoinHostPort(host+"-shadow", port)
	}
	return authority + "-shadow"
}

// mirrorTargets rolls each mirror policy of rt and returns the clusters to shadow to.
func (d *Dataplane) mirrorTargets(rt *runtime, r *rroute) []*rcluster {
	var out []*rcluster
	for _, m := range r.mirrors {
		if m.share < 1_000_000 && rand.Uint32N(1_000_000) >= m.share {
			continue
		}
		if cl := rt.clusters[m.cluster]; cl != nil && cl.kind != "original_dst" {
			out = append(out, cl)
		}
	}
	return out
}

// shadow sends a copy of a request to an endpoint of cl and drops the
// answer: fire and forget, as Envoy mirrors.
func (d *Dataplane) shadow(cl *rcluster, method, path, authority string, h http.Header, body []byte) {
	ep := cl.pick()
	if ep == nil {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.WithValue(context.Background(), endpointKey{}, ep), mirrorTimeout)
		defer cancel()
		var rd io.Reader
		if len(body) > 0 {
			rd = bytes.NewReader(body)
		}
		req, err := http.NewRequestWithContext(ctx, method, "http://"+ep.addr+path, rd)
		if err != nil {
			return
		}
		req.Header = h
		req.Host = shadowHost(authority)
		tr := d.fwd.h1
		if cl.h2 {
			tr = d.fwd.h2c
		}
		resp, err := tr.RoundTrip(req)
		if err != nil {
			d.log.Debug("mirror failed", "cluster", cl.name, "err", err)
			return
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
	}()
}

// mirrorH1 returns the http1 engine's mirror hook for the clusters chosen.
func (d *Dataplane) mirrorH1(targets []*rcluster) func(*http1.Request, []byte) {
	return func(req *http1.Request, body []byte) {
		h := make(http.Header, len(req.Header))
		for _, f := range req.Header {
			if isHopHeader(f.Name) || strings.EqualFold(f.Name, "host") {
				continue
			}
			h.Add(f.Name, f.Value)
		}
		var b []byte
		if len(body) > 0 {
			b = bytes.Clone(body)
		}
		for _, cl := range targets {
			d.shadow(cl, req.Method, req.Path(), req.Authority(), h.Clone(), b)
		}
	}
}

func isHopHeader(name string) bool {
	for _, h := range hopHeaders {
		if strings.EqualFold(h, name) {
			return true
		}
	}
	return false
}

// mirror shadows a request of the net/http path. A body is mirrored when
// its length is known and small; streams of unknown length are not.
func (f *forwarder) mirror(r *http.Request, rt *runtime, route *rroute) {
	targets := f.d.mirrorTargets(rt, route)
	if len(targets) == 0 {
		return
	}
	var body []byte
	switch {
	case r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody:
	case r.ContentLength > 0 && r.ContentLength <= maxRetryBody:
		b, err := io.ReadAll(io.LimitReader(r.Body, r.ContentLength))
		if err != nil {
			return
		}
		body = b
		r.Body = io.NopCloser(bytes.NewReader(b))
	default:
		f.d.log.Debug("not mirroring a request body of unknown or large length", "path", r.URL.Path)
		return
	}
	h := r.Header.Clone()
	for _, k := range hopHeaders {
		h.Del(k)
	}
	for _, cl := range targets {
		f.d.shadow(cl, r.Method, r.URL.RequestURI(), r.Host, h.Clone(), body)
	}
}
