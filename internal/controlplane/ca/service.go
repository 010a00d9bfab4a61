package ca

import (
	"context"
	"encoding/pem"
	"errors"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	pb "istio.io/api/security/v1alpha1"

	"github.com/weft-mesh/weft/internal/spiffe"
)

var _ pb.IstioCertificateServiceServer = (*Server)(nil)

// CreateCertificate signs a workload's CSR, as Istio's CA does. The caller
// authenticates with a join token (metadata "authorization: Bearer TOKEN",
// for its first certificate) or a client certificate from this CA (renewals);
// the CSR's identity must be the caller's. The answer's cert_chain is the
// leaf, its intermediates, and last the trust bundle (every root, PEM).
func (s *Server) CreateCertificate(ctx context.Context, req *pb.IstioCertificateRequest) (*pb.IstioCertificateResponse, error) {
	id, err := s.callerIdentity(ctx)
	if err != nil {
		return nil, err
	}
	if slices.Contains(s.opts.Reserved, id) {
		s.opts.CA.refused.Add(1)
		s.log.Warn("refused a CSR for a reserved identity", "identity", id.String())
		return nil, status.Errorf(codes.PermissionDenied, "%s is reserved: this CA does not issue it to workloads", id)
	}
	ttl := time.Duration(req.GetValidityDuration()) * time.Second
	chain, err := s.opts.CA.Sign([]byte(req.GetCsr()), id, ttl)
	if err != nil {
		code := codes.InvalidArgument
		if errors.Is(err, ErrIdentityMismatch) {
			code = codes.PermissionDenied
		}
		return nil, status.Error(code, err.Error())
	}
	resp := &pb.IstioCertificateResponse{CertChain: splitPEM(chain)}
	resp.CertChain = append(resp.CertChain, string(s.opts.CA.TrustBundle()))
	s.log.Info("issued a certificate", "identity", id.String())
	return resp, nil
}

// callerIdentity authenticates a CreateCertificate call: a bearer token
// first, else a verified client certificate.
func (s *Server) callerIdentity(ctx context.Context) (spiffe.ID, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	if auth := md.Get("authorization"); len(auth) > 0 {
		tok, ok := strings.CutPrefix(auth[0], "Bearer ")
		if !ok {
			return spiffe.ID{}, s.unauthenticated("authorization metadata: want \"Bearer <token>\"")
		}
		ns, sa, err := s.opts.Tokens.Verify(strings.TrimSpace(tok))
		if err != nil {
			return spiffe.ID{}, s.unauthenticated("token refused: %v", err)
		}
		return spiffe.New(ns, sa), nil
	}
	id, ok, err := peerIdentity(ctx)
	switch {
	case !ok:
		return spiffe.ID{}, s.unauthenticated("no credentials: send a join token (authorization: Bearer <token>) or a client certificate from the mesh CA")
	case err != nil:
		return spiffe.ID{}, s.unauthenticated("client certificate has no usable SPIFFE identity: %v", err)
	}
	return id, nil
}

// splitPEM returns each PEM block of data as its own string.
func splitPEM(data []byte) []string {
	var out []string
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return out
		}
		out = append(out, string(pem.EncodeToMemory(b)))
	}
}
