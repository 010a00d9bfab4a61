package cli

import (
	"flag"

	"github.com/weft-mesh/weft/internal/controlplane"
	"github.com/weft-mesh/weft/internal/kube/inject"
)

// webhookFlags adds the sidecar injector's flags to weft control-plane; the
// function it returns gives its options (nil without --webhook-address).
func webhookFlags(fs *flag.FlagSet) func() *controlplane.WebhookOptions {
	o := controlplane.WebhookOptions{Settings: inject.DefaultSettings(Version)}
	fs.StringVar(&o.Address, "webhook-address", "", `serve the sidecar injector (mutating admission webhook, HTTPS, path /inject) on this address, e.g. ":15017" (default: don't)`)
	fs.StringVar(&o.Settings.Image, "injection-image", o.Settings.Image, "with --webhook-address: the weft image of injected containers")
	fs.StringVar(&o.Settings.XDSAddress, "injection-xds-address", o.Settings.XDSAddress, "with --webhook-address: the xDS address injected proxies use")
	fs.StringVar(&o.Settings.SecureXDSAddress, "injection-secure-xds-address", o.Settings.SecureXDSAddress,
		"with --webhook-address: the xDS and CA address over TLS injected proxies use")
	fs.BoolVar(&o.Settings.HoldApplicationUntilProxyStarts, "hold-application-until-proxy-starts", false,
		"with --webhook-address: start apps after their proxy is ready unless proxy.istio.io/config says otherwise")
	fs.BoolVar(&o.Settings.DNSCapture, "dns-capture", false,
		"with --webhook-address: redirect injected pods' DNS to their proxy unless proxyMetadata ISTIO_META_DNS_CAPTURE says otherwise")
	return func() *controlplane.WebhookOptions {
		if o.Address == "" {
			return nil
		}
		return &o
	}
}
