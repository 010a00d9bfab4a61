package ca

import (
	"fmt"
	"strings"
	"sync"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/weft-mesh/weft/internal/spiffe"
)

// adsService is the gRPC service whose streams need a client certificate.
const adsService = "/envoy.service.discovery.v3.AggregatedDiscoveryService/"

// authorizeXDS requires a client certificate from the CA on ADS streams, and
// that every node the proxy announces has that certificate's namespace and
// service account, so a proxy only ever gets its own config.
func (s *Server) authorizeXDS(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if !strings.HasPrefix(info.FullMethod, adsService) {
		return handler(srv, ss)
	}
	id, ok, err := peerIdentity(ss.Context())
	switch {
	case !ok:
		return s.unauthenticated("xDS on this port needs a client certificate from the mesh CA; get one with CreateCertificate and a join token")
	case err != nil:
		return s.unauthenticated("client certificate has no usable SPIFFE identity: %v", err)
	}
	cs := &checkedStream{ServerStream: ss, id: id}
	herr := handler(srv, cs)
	if err := cs.failure(); err != nil {
		s.log.Warn("refused an xDS stream", "identity", id.String(), "error", err)
		return err
	}
	return herr
}

// checkedStream checks the node of every request a proxy sends.
type checkedStream struct {
	grpc.ServerStream
	id spiffe.ID

	mu  sync.Mutex
	err error
}

// RecvMsg receives a request and fails, ending the stream, when its node
// claims another identity.
func (c *checkedStream) RecvMsg(m any) error {
	if err := c.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	var node *core.Node
	switch r := m.(type) {
	case *discovery.DiscoveryRequest:
		node = r.GetNode()
	case *discovery.DeltaDiscoveryRequest:
		node = r.GetNode()
	}
	if node == nil {
		return nil
	}
	if err := checkNode(node, c.id); err != nil {
		c.mu.Lock()
		c.err = err
		c.mu.Unlock()
		return err
	}
	return nil
}

func (c *checkedStream) failure() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// checkNode compares the node's namespace (metadata NAMESPACE, else from the
// node ID NAME.NAMESPACE part) and metadata SERVICE_ACCOUNT with id.
func checkNode(node *core.Node, id spiffe.ID) error {
	fields := node.GetMetadata().GetFields()
	ns := fields["NAMESPACE"].GetStringValue()
	if ns == "" {
		if parts := strings.Split(node.GetId(), "~"); len(parts) == 4 {
			if i := strings.LastIndexByte(parts[2], '.'); i >= 0 {
				ns = parts[2][i+1:]
			}
		}
	}
	sa := fields["SERVICE_ACCOUNT"].GetStringValue()
	if ns != id.Namespace || sa != id.ServiceAccount {
		return status.Error(codes.PermissionDenied, fmt.Sprintf(
			"xDS node %q claims namespace %q and service account %q, but its certificate is for %s (namespace %q, service account %q)",
			node.GetId(), ns, sa, id, id.Namespace, id.ServiceAccount))
	}
	return nil
}
