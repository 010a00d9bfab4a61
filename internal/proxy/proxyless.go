package proxy

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/weft-mesh/weft/internal/proxy/certs"
)

// Proxyless is what `weft run --proxyless` runs beside a gRPC app that
// links its own xDS client (grpc-go's google.golang.org/grpc/xds), as
// Istio's grpc-agent does: no sidecar, but the bootstrap file that app's
// xDS client reads (GRPC_XDS_BOOTSTRAP) — the control plane's plaintext xDS
// address, a node with Istio's metadata and GENERATOR=grpc — and, with a
// join token, the workload's mesh certificate, key and trust bundle on
// disk, renewed at half-life, named by the bootstrap's certificate
// provider "default" (file_watcher) for the app's xDS credentials.
type Proxyless struct {
	opts Options
	log  *slog.Logger
	dir  string
	// ownDir: dir is StartProxyless's temporary directory, removed by Close.
	ownDir bool
	// mode of the files: 0600 in our own directory; 0644 in a shared one,
	// which the app's container reads as another user (a pod-private
	// emptyDir: no one outside the pod sees it).
	mode  os.FileMode
	certs *certs.Client // nil without a token
	stop  context.CancelFunc
	wg    sync.WaitGroup
}

// ProxylessBootstrapFile is the bootstrap's name in a Proxyless's directory.
const ProxylessBootstrapFile = "bootstrap.json"

// Files of a Proxyless's directory.
const (
	bootstrapFile = ProxylessBootstrapFile
	certFile      = "cert-chain.pem"
	keyFile       = "key.pem"
	rootFile      = "root-cert.pem"
)

// StartProxyless writes the app's bootstrap (and gets its certificate, with
// Options.Token or TokenFile) in a new temporary directory. Of opts it uses
// the identity (Name, Namespace, IP, Labels, Service, Version,
// ServiceAccount), XDSAddress, the token options and Logger.
func StartProxyless(opts Options) (*Proxyless, error) {
	dir, err := os.MkdirTemp("", "weft-proxyless-")
	if err != nil {
		return nil, fmt.Errorf("proxyless: %w", err)
	}
	p, err := startProxyless(opts, dir, true)
	if err != nil {
		_ = os.RemoveAll(dir)
	}
	return p, err
}

// StartProxylessIn is StartProxyless writing in dir, which it creates if
// need be and Close leaves in place: on Kubernetes, an emptyDir that the
// grpc-agent container shares with the app's containers. The files are
// readable by all (mode 0644): the app runs as another user, and dir
// must be private to the workload.
func StartProxylessIn(opts Options, dir string) (*Proxyless, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("proxyless: %w", err)
	}
	return startProxyless(opts, dir, false)
}

func startProxyless(opts Options, dir string, ownDir bool) (*Proxyless, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	p := &Proxyless{opts: o, log: o.Logger.With("component", "proxyless"), dir: dir, ownDir: ownDir, mode: 0o600}
	if !ownDir {
		p.mode = 0o644
	}
	if o.joinsMesh() {
		if p.certs, err = joinMesh(o, p.log); err != nil {
			return nil, p.fail(err)
		}
		if err := p.writeCerts(); err != nil {
			return nil, p.fail(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		p.stop = cancel
		p.wg.Add(1)
		go p.renewals(ctx)
	}
	if err := p.writeBootstrap(); err != nil {
		return nil, p.fail(err)
	}
	p.log.Info("proxyless bootstrap written", "file", p.BootstrapFile(), "xds", o.XDSAddress, "mtls", p.certs != nil)
	return p, nil
}

func (p *Proxyless) fail(err error) error {
	p.Close()
	return err
}

// BootstrapFile is the bootstrap's path, the app's GRPC_XDS_BOOTSTRAP.
func (p *Proxyless) BootstrapFile() string { return filepath.Join(p.dir, bootstrapFile) }

// Options returns the options with their defaults filled in.
func (p *Proxyless) Options() Options { return p.opts }

// Env is the app's environment: GRPC_XDS_BOOTSTRAP and the pod's identity
// (POD_IP, POD_NAME, POD_NAMESPACE, SERVICE_ACCOUNT, SERVICE_VERSION, PORT).
func (p *Proxyless) Env() map[string]string {
	port := ""
	if len(p.opts.Ports) > 0 {
		port = strconv.FormatUint(uint64(p.opts.Ports[0].Number), 10)
	}
	return map[string]string{
		"GRPC_XDS_BOOTSTRAP": p.BootstrapFile(),
		"POD_IP":             p.opts.IP.String(), "POD_NAME": p.opts.Name, "POD_NAMESPACE": p.opts.Namespace,
		"SERVICE_ACCOUNT": p.opts.ServiceAccount, "SERVICE_VERSION": p.opts.Version, "PORT": port,
	}
}

// Close stops the renewals and removes the directory StartProxyless made.
func (p *Proxyless) Close() {
	if p.stop != nil {
		p.stop()
	}
	p.wg.Wait()
	if p.certs != nil {
		p.certs.Close()
	}
	if p.ownDir {
		_ = os.RemoveAll(p.dir)
	}
}

// renewals rewrites the certificate files after each renewal; the app's
// file_watcher provider picks them up.
func (p *Proxyless) renewals(ctx context.Context) {
	defer p.wg.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.certs.Renewed():
			if err := p.writeCerts(); err != nil {
				p.log.Error("writing the renewed certificate", "error", err)
			}
		}
	}
}

// writeCerts writes the current certificate, key and bundle, each file
// replaced at once (a reader never sees half of one).
func (p *Proxyless) writeCerts() error {
	chain, key, bundle, err := p.certs.PEM()
	if err != nil {
		return err
	}
	for name, data := range map[string][]byte{certFile: chain, keyFile: key, rootFile: bundle} {
		if err := writeAtomic(filepath.Join(p.dir, name), data, p.mode); err != nil {
			return err
		}
	}
	return nil
}

// writeBootstrap writes grpc-go's bootstrap: xDS to the control plane
// (proxyless apps never register themselves) — plaintext without an
// identity, mutual TLS to the authenticated port with a certificate — the
// node, Istio's server listener name template and the certificate's
// provider.
func (p *Proxyless) writeBootstrap() error {
	o := p.opts
	labels := map[string]any{}
	for k, v := range o.Labels {
		labels[k] = v
	}
	md := map[string]any{
		"GENERATOR": "grpc", "NAMESPACE": o.Namespace, "INSTANCE_IPS": o.IP.String(), "LABELS": labels,
		"WORKLOAD_NAME": o.Workload, "ISTIO_VERSION": o.ProxyVersion,
	}
	if o.ServiceAccount != "" {
		md["SERVICE_ACCOUNT"] = o.ServiceAccount
	}
	boot := map[string]any{
		"xds_servers": []any{map[string]any{
			"server_uri":      o.XDSAddress,
			"channel_creds":   []any{map[string]any{"type": "insecure"}},
			"server_features": []any{"xds_v3"},
		}},
		"node": map[string]any{
			"id":       NodeID(ModeSidecar, o.IP, o.Name, o.Namespace),
			"metadata": md,
			"locality": localityJSON(o.Locality),
		},
		"server_listener_resource_name_template": "xds.istio.io/grpc/lds/inbound/%s",
	}
	if p.certs != nil {
		md["WEFT_MTLS"] = "true"
		files := map[string]any{
			"certificate_file":    filepath.Join(p.dir, certFile),
			"private_key_file":    filepath.Join(p.dir, keyFile),
			"ca_certificate_file": filepath.Join(p.dir, rootFile),
			"refresh_interval":    "60s",
		}
		boot["certificate_providers"] = map[string]any{"default": map[string]any{"plugin_name": "file_watcher", "config": files}}
		// With an identity, xDS itself goes over mutual TLS to the
		// authenticated port, which binds the node to the certificate's
		// identity (plaintext xDS serves no identity-bearing config).
		boot["xds_servers"] = []any{map[string]any{
			"server_uri":      o.SecureAddress,
			"channel_creds":   []any{map[string]any{"type": "tls", "config": files}},
			"server_features": []any{"xds_v3"},
		}}
	}
	data, err := json.MarshalIndent(boot, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(p.BootstrapFile(), data, p.mode)
}

// localityJSON is region/zone/subzone as the bootstrap's locality.
func localityJSON(s string) map[string]any {
	l := locality(s)
	if l == nil {
		return map[string]any{}
	}
	return map[string]any{"region": l.GetRegion(), "zone": l.GetZone(), "sub_zone": l.GetSubZone()}
}

// writeAtomic writes data to path through a temporary file and a rename.
func writeAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	_ = os.Remove(tmp) // WriteFile keeps an existing file's mode
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
