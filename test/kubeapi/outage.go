package kubeapi

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"k8s.io/client-go/rest"
)

// Outage takes the API server down, as a control-plane upgrade does, and
// brings it back with its clients' resource versions expired:
//
//  1. it stops the API server (SIGTERM): every client's watch ends;
//  2. it runs fn with the admin's config of a second API server on the same
//     etcd (another port), so fn's writes happen while the first server's
//     clients see nothing;
//  3. it stops that one and compacts etcd's history up to its current
//     revision;
//  4. it starts the API server again on its address.
//
// A client that resumes a watch from the resource version it had gets
// 410 Gone (expired) and must list again to see fn's writes.
func (s *Server) Outage(ctx context.Context, fn func(cfg *rest.Config) error) error {
	s.mu.Lock()
	old := s.apiserver
	s.mu.Unlock()
	old.stop(10 * time.Second)
	_, ports, err := loopbackPortsOn(s.IP, 1)
	if err != nil {
		return err
	}
	second, err := s.runAPIServer(ctx, ports[0], "kube-apiserver-outage.log")
	if err != nil {
		return fmt.Errorf("the second API server: %w", err)
	}
	fnErr := fn(s.pki.clientConfig(fmt.Sprintf("https://%s:%d", s.IP, ports[0]), "weft-admin", "system:masters"))
	second.stop(10 * time.Second)
	if err := s.compact(ctx); err != nil {
		return err
	}
	if err := s.startAPIServer(ctx); err != nil {
		return err
	}
	return fnErr
}

// compact discards etcd's history before its current revision, through
// etcd's JSON gateway (/v3/kv/range for the revision, /v3/kv/compaction).
func (s *Server) compact(ctx context.Context) error {
	var rng struct {
		Header struct {
			Revision string `json:"revision"`
		} `json:"header"`
	}
	key := base64.StdEncoding.EncodeToString([]byte("/registry/weft-test-compact"))
	if err := s.etcdCall(ctx, "/v3/kv/range", map[string]any{"key": key}, &rng); err != nil {
		return err
	}
	if rng.Header.Revision == "" {
		return fmt.Errorf("etcd's range answer has no revision")
	}
	return s.etcdCall(ctx, "/v3/kv/compaction", map[string]any{"revision": rng.Header.Revision, "physical": true}, nil)
}

func (s *Server) etcdCall(ctx context.Context, path string, req, resp any) error {
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, s.etcdURL+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	r.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(r)
	if err != nil {
		return fmt.Errorf("etcd %s: %w", path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("etcd %s: %s: %s", path, res.Status, b)
	}
	if resp != nil {
		if err := json.Unmarshal(b, resp); err != nil {
			return fmt.Errorf("etcd %s: %w: %s", path, err, b)
		}
	}
	return nil
}
