package controlplane

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"

	"github.com/weft-mesh/weft/internal/controlplane/authz"
)

// adminCredentials is the standalone admin token and the files that hand
// it to the CLI of the user who runs the control plane.
type adminCredentials struct {
	token string
	files []string // written, removed at the end (the data dir's is kept)
	log   *slog.Logger
}

// loadAdminToken returns the admin token of DATA_DIR/admin-credentials.json,
// or a new one when there is none (or no data dir): a restart keeps it.
func loadAdminToken(dataDir string) (string, error) {
	if dataDir == "" {
		return authz.NewAdminToken(), nil
	}
	c, err := authz.ReadCredentials(filepath.Join(dataDir, authz.CredentialsFile))
	switch {
	case err == nil && authz.IsAdminToken(c.Token):
		return c.Token, nil
	case err == nil || errors.Is(err, fs.ErrNotExist):
		return authz.NewAdminToken(), nil
	}
	return "", fmt.Errorf("admin credentials: %w (delete the file to get a new admin token)", err)
}

// writeAdminCredentials writes the token with the API's bound address to
// DATA_DIR/admin-credentials.json and, if home is set, to
// home/credentials/IP_PORT.json, both 0600.
func writeAdminCredentials(token, dataDir, home string, api net.Addr, log *slog.Logger) (*adminCredentials, error) {
	a := &adminCredentials{token: token, log: log}
	c := &authz.Credentials{Server: "http://" + api.String(), Token: token}
	if dataDir != "" {
		if err := authz.WriteCredentials(filepath.Join(dataDir, authz.CredentialsFile), c); err != nil {
			return nil, err
		}
	}
	if home != "" {
		if name := authz.LocalPath(home, api.String()); name != "" {
			if err := authz.WriteCredentials(name, c); err != nil {
				// The data dir's copy (or --credentials) still works.
				log.Warn("cannot leave the admin credentials for the CLI", "file", name, "error", err)
			} else {
				a.files = append(a.files, name)
			}
		}
	}
	log.Info("admin credentials written (weft apply, delete and token create on this host use them)", "files", append(a.dataDirFile(dataDir), a.files...))
	return a, nil
}

func (a *adminCredentials) dataDirFile(dataDir string) []string {
	if dataDir == "" {
		return nil
	}
	return []string{filepath.Join(dataDir, authz.CredentialsFile)}
}

// remove deletes the per-user files that still hold this token.
func (a *adminCredentials) remove() {
	for _, name := range a.files {
		if c, err := authz.ReadCredentials(name); err == nil && c.Token == a.token {
			if err := os.Remove(name); err != nil {
				a.log.Debug("removing admin credentials", "file", name, "error", err)
			}
		}
	}
}
