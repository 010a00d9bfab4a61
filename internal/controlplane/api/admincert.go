package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/weft-mesh/weft/internal/controlplane/authz"
	"github.com/weft-mesh/weft/internal/spiffe"
)

// AdminCertPath is the admin certificate endpoint: POST {csr, ttl} →
// {certificate, certificateAuthority}. The mesh CA signs the CSR for the
// admin identity (authz.AdminIdentity), with which `weft` reaches the API
// over mTLS from another host. Only a caller allowed AdminCertAction may.
const AdminCertPath = "/api/v1/admin-certificates"

// AdminCertAction is the permission an admin certificate needs: on
// Kubernetes, RBAC can grant it (create admincertificates.weft.io).
var AdminCertAction = authz.Action{Verb: authz.VerbCreate, Group: "weft.io", Resource: "admincertificates"}

// DefaultAdminCertTTL is an admin certificate's validity when the request
// names none (the CA signs at most a week: ca.MaxTTL).
const DefaultAdminCertTTL = 24 * time.Hour

// CertSigner signs CSRs and has the mesh's roots (ca.CA). It must be safe
// for concurrent use.
type CertSigner interface {
	Sign(csr []byte, identity spiffe.ID, ttl time.Duration) ([]byte, error)
	TrustBundle() []byte
}

// AdminCertRequest is the body of POST /api/v1/admin-certificates.
type AdminCertRequest struct {
	// CSR is PEM; its only URI SAN is authz.AdminIdentity.
	CSR string `json:"csr"`
	// TTL is a Go duration; empty means DefaultAdminCertTTL.
	TTL string `json:"ttl,omitempty"`
}

// AdminCertResponse is the answer of POST /api/v1/admin-certificates.
type AdminCertResponse struct {
	// Certificate is the leaf and the intermediates, PEM.
	Certificate string `json:"certificate"`
	// CertificateAuthority is the mesh's roots, PEM: they verify the API's
	// certificate too.
	CertificateAuthority string `json:"certificateAuthority"`
}

// MountAdminCerts serves POST /api/v1/admin-certificates with signer in front of next.
func MountAdminCerts(next http.Handler, signer CertSigner, az *authz.Authorizer) http.Handler {
	if az == nil {
		az = authz.New(authz.Options{})
	}
	mux := http.NewServeMux()
	mux.Handle("/", next)
	mux.HandleFunc("POST "+AdminCertPath, func(w http.ResponseWriter, r *http.Request) {
		if !az.Check(w, r, AdminCertAction) {
			return
		}
		var req AdminCertRequest
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&req); err != nil {
			writeError(w, http.StatusBadRequest, fmt.Errorf("reading the certificate request: %w", err))
			return
		}
		ttl, err := requestTTL(req.TTL, DefaultAdminCertTTL)
		if err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		chain, err := signer.Sign([]byte(req.CSR), authz.AdminIdentity, ttl)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Errorf("signing the admin certificate: %w", err))
			return
		}
		writeJSON(w, http.StatusOK, AdminCertResponse{Certificate: string(chain), CertificateAuthority: string(signer.TrustBundle())})
	})
	return mux
}

// CreateAdminCert asks the control plane to sign csr (PEM) for the admin identity.
func (c *Client) CreateAdminCert(ctx context.Context, csr []byte, ttl time.Duration) (AdminCertResponse, error) {
	body, err := json.Marshal(AdminCertRequest{CSR: string(csr), TTL: ttl.String()})
	if err != nil {
		return AdminCertResponse{}, err
	}
	var resp AdminCertResponse
	err = c.do(ctx, http.MethodPost, c.base+AdminCertPath, body, &resp)
	return resp, err
}
