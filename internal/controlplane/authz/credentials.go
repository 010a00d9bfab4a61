package authz

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// CredentialsFile is the admin credentials' file in the control plane's
// data dir.
const CredentialsFile = "admin-credentials.json"

// EnvHome names the environment variable with weft's per-user directory
// (default ~/.weft), where a control plane with no data dir leaves its
// admin credentials for the CLI: HOME/credentials/IP_PORT.json.
const EnvHome = "WEFT_HOME"

// adminTokenPrefix starts every admin token, so that the API tells it from
// a Kubernetes token without asking the API server.
const adminTokenPrefix = "weft-admin."

// NewAdminToken returns a fresh random admin token.
func NewAdminToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return adminTokenPrefix + base64.RawURLEncoding.EncodeToString(b)
}

// IsAdminToken reports whether tok has the admin token's form.
func IsAdminToken(tok string) bool { return strings.HasPrefix(tok, adminTokenPrefix) }

// Credentials is what a client needs to call the control plane's API, as a
// kubeconfig's context: the server and one credential (a bearer token, or
// a client certificate and its key), with the roots of an https server.
type Credentials struct {
	Server string `json:"server"`
	Token  string `json:"token,omitempty"`
	// CertificateAuthority is PEM: the roots that verify an https server.
	CertificateAuthority string `json:"certificateAuthority,omitempty"`
	// ClientCertificate and ClientKey are PEM: an admin client certificate.
	ClientCertificate string `json:"clientCertificate,omitempty"`
	ClientKey         string `json:"clientKey,omitempty"`
}

// ReadCredentials reads a credentials file; name may be a data dir, which
// holds it as CredentialsFile.
func ReadCredentials(name string) (*Credentials, error) {
	if fi, err := os.Stat(name); err == nil && fi.IsDir() {
		name = filepath.Join(name, CredentialsFile)
	}
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("reading credentials: %w", err)
	}
	var c Credentials
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("credentials %s: %w", name, err)
	}
	if c.Token == "" && (c.ClientCertificate == "" || c.ClientKey == "") {
		return nil, fmt.Errorf("credentials %s: no token and no client certificate with its key", name)
	}
	return &c, nil
}

// WriteCredentials writes c to name, readable by its owner only (0600, in
// a directory made 0700), replacing the file atomically.
func WriteCredentials(name string, c *Credentials) error {
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("writing credentials: %w", err)
	}
	f, err := os.CreateTemp(dir, ".credentials-*")
	if err != nil {
		return fmt.Errorf("writing credentials: %w", err)
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("writing credentials: %w", err)
	}
	if _, err := f.Write(append(data, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("writing credentials %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing credentials %s: %w", name, err)
	}
	if err := os.Rename(f.Name(), name); err != nil {
		return fmt.Errorf("writing credentials: %w", err)
	}
	return nil
}

// Home returns weft's per-user directory: $WEFT_HOME, else ~/.weft.
// getenv may be nil (os.Getenv).
func Home(getenv func(string) string) (string, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	if h := getenv(EnvHome); h != "" {
		return h, nil
	}
	home := getenv("HOME")
	if home == "" {
		var err error
		if home, err = os.UserHomeDir(); err != nil {
			return "", fmt.Errorf("no home directory for weft's credentials (set %s): %w", EnvHome, err)
		}
	}
	return filepath.Join(home, ".weft"), nil
}

// LocalPath is where, under home, the credentials of the control plane
// whose API listens on addr (host:port, or a URL) are kept. A wildcard
// host is 127.0.0.1, as the CLI reaches it; "" when addr names no IP.
func LocalPath(home, addr string) string {
	if u, err := url.Parse(addr); err == nil && u.Host != "" {
		addr = u.Host
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	if host == "localhost" || host == "" {
		host = "127.0.0.1"
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return ""
	}
	ip = ip.Unmap()
	if ip.IsUnspecified() {
		ip = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	}
	name := strings.ReplaceAll(ip.String(), ":", "-") + "_" + port + ".json"
	return filepath.Join(home, "credentials", name)
}
