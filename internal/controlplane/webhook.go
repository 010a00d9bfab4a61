package controlplane

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/weft-mesh/weft/internal/controlplane/ca"
	"github.com/weft-mesh/weft/internal/kube/inject"
	"github.com/weft-mesh/weft/internal/kube/webhook"
)

// WebhookOptions serves the sidecar injector, a mutating admission webhook
// (`--webhook-address`).
type WebhookOptions struct {
	// Address is where the injector listens over HTTPS (":15017" in a cluster).
	Address string
	// Settings are what the injector adds to pods.
	Settings inject.Settings
	// Client reaches the API server: namespaces' labels, and the CA bundle
	// of the MutatingWebhookConfiguration. Nil: namespace labels are not
	// seen (only pods that opt in get a sidecar) and the bundle is not set.
	Client kubernetes.Interface
	// URL, if set, is how the API server calls the injector when the
	// control plane runs outside the cluster (the
	// MutatingWebhookConfiguration's clientConfig.url, `weft install --set
	// injector.url`): its host, an IP or a DNS name, is added to the
	// certificate's SANs. Empty: the API server calls Service weftd.
	URL string
	// Ready, if set, is called with the bound address.
	Ready func(net.Addr)
}

// WebhookURLHost checks u as a webhook URL the API server accepts and the
// injector serves (https, a host, path webhook.Path, no query or user) and
// returns its host, for the certificate's SANs.
func WebhookURLHost(u string) (string, error) {
	p, err := url.Parse(u)
	if err != nil {
		return "", fmt.Errorf("webhook URL %q: %w", u, err)
	}
	switch {
	case p.Scheme != "https":
		return "", fmt.Errorf("webhook URL %q: want https (the API server calls webhooks over TLS only)", u)
	case p.Hostname() == "":
		return "", fmt.Errorf("webhook URL %q: no host", u)
	case p.User != nil || p.RawQuery != "" || p.Fragment != "":
		return "", fmt.Errorf("webhook URL %q: the API server refuses a user, query or fragment", u)
	case p.Path != webhook.Path:
		return "", fmt.Errorf("webhook URL %q: path %q, want %s (where the injector serves)", u, p.Path, webhook.Path)
	}
	return p.Hostname(), nil
}

// WebhookDNSNames are the DNS SANs of the injector's certificate: the
// weftd Service, as the API server reaches it.
var WebhookDNSNames = []string{"weftd.weft-system.svc", "weftd.weft-system.svc.cluster.local", "weftd.weft-system", "weftd"}

// webhookResync is how often the namespace cache and the CA bundle are
// checked again, besides the watches' events.
const webhookResync = 5 * time.Minute

// noNamespaces knows no namespace's labels (no API server).
type noNamespaces struct{}

func (noNamespaces) Labels(context.Context, string) (map[string]string, error) { return nil, nil }

// startWebhook serves the injector until stop is called (or ctx ends);
// stop waits for it and returns its error.
func startWebhook(ctx context.Context, o *WebhookOptions, authority *ca.CA, log *slog.Logger) (stop func() error, err error) {
	log = log.With("component", "injector")
	ctx, cancel := context.WithCancel(ctx)
	var namespaces webhook.NamespaceLabels = noNamespaces{}
	if o.Client != nil {
		if namespaces, err = webhook.NewNamespaces(ctx, o.Client, webhookResync); err != nil {
			cancel()
			return nil, fmt.Errorf("sidecar injector: %w", err)
		}
	} else {
		log.Warn("no Kubernetes API server (--kubernetes): namespace labels are not seen, only pods that opt in get a sidecar")
	}
	dns, ips := WebhookDNSNames, []net.IP(nil)
	if o.URL != "" {
		host, err := WebhookURLHost(o.URL)
		if err != nil {
			cancel()
			return nil, err
		}
		if ip := net.ParseIP(host); ip != nil {
			ips = []net.IP{ip}
		} else {
			dns = append(slices.Clone(dns), host)
		}
	}
	cert := authority.NewServingCert(ca.ControlPlaneIdentity, dns, ips, ca.DefaultTTL, log)
	if _, err := cert.GetCertificate(nil); err != nil {
		cancel()
		return nil, fmt.Errorf("issuing the sidecar injector's certificate: %w", err)
	}
	lis, err := net.Listen("tcp", o.Address)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("webhook address: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle(webhook.Path, webhook.NewHandler(o.Settings, namespaces, log))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: cert.GetCertificate}}
	var (
		wg       sync.WaitGroup
		serveErr error
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := srv.ServeTLS(lis, "", ""); !errors.Is(err, http.ErrServerClosed) {
			serveErr = fmt.Errorf("serving the sidecar injector on %s: %w", lis.Addr(), err)
			log.Error("sidecar injector stopped", "error", err)
		}
	}()
	if o.Client != nil {
		patcher := &webhook.CABundlePatcher{Client: o.Client, Bundle: authority.TrustBundle, Logger: log}
		wg.Add(1)
		go func() {
			defer wg.Done()
			patcher.Run(ctx, webhookResync)
		}()
	}
	log.Info("serving the sidecar injector", "address", lis.Addr().String(), "path", webhook.Path, "url", o.URL, "image", o.Settings.Image)
	if o.Ready != nil {
		o.Ready(lis.Addr())
	}
	return func() error {
		cancel()
		sctx, scancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer scancel()
		if err := srv.Shutdown(sctx); err != nil {
			srv.Close()
		}
		wg.Wait()
		return serveErr
	}, nil
}
