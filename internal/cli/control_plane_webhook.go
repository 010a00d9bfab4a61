package cli

import (
	"flag"
	"fmt"

	"github.com/weft-mesh/weft/internal/controlplane"
	"github.com/weft-mesh/weft/internal/kube/inject"
)

// webhookFlags adds the sidecar injector's flags to weft control-plane; the
// function it returns gives its options (nil without --webhook-address).
func webhookFlags(fs *flag.FlagSet) func() (*controlplane.WebhookOptions, error) {
	o := controlplane.WebhookOptions{Settings: inject.DefaultSettings(Version)}
	fs.StringVar(&o.Address, "webhook-address", "", `serve the sidecar injector (mutating admission webhook, HTTPS, path /inject) on this address, e.g. ":15017" (default: don't)`)
	fs.StringVar(&o.URL, "webhook-url", "", "with --webhook-address, outside the cluster: the URL the API server calls (weft install --set injector.url=URL), https://HOST:PORT/inject; HOST joins the certificate's SANs")
	fs.StringVar(&o.Settings.Image, "injection-image", o.Settings.Image, "with --webhook-address: the weft image of injected containers")
	fs.StringVar(&o.Settings.XDSAddress, "injection-xds-address", o.Settings.XDSAddress, "with --webhook-address: the xDS address injected proxies use")
	fs.StringVar(&o.Settings.SecureXDSAddress, "injection-secure-xds-address", o.Settings.SecureXDSAddress,
		"with --webhook-address: the xDS and CA address over TLS injected proxies use")
	fs.BoolVar(&o.Settings.HoldApplicationUntilProxyStarts, "hold-application-until-proxy-starts", false,
		"with --webhook-address: start apps after their proxy is ready unless proxy.istio.io/config says otherwise")
	fs.BoolVar(&o.Settings.DNSCapture, "dns-capture", false,
		"with --webhook-address: redirect injected pods' DNS to their proxy unless proxyMetadata ISTIO_META_DNS_CAPTURE says otherwise")
	return func() (*controlplane.WebhookOptions, error) {
		if o.Address == "" {
			if o.URL != "" {
				return nil, fmt.Errorf("--webhook-url %s: needs --webhook-address, where the injector listens", o.URL)
			}
			return nil, nil
		}
		if o.URL != "" {
			if _, err := controlplane.WebhookURLHost(o.URL); err != nil {
				return nil, fmt.Errorf("--webhook-url: %w", err)
			}
		}
		return &o, nil
	}
}
