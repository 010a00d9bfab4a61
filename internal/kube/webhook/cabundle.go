package webhook

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"time"

	admissionregv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// ConfigurationName is the MutatingWebhookConfiguration weft install
// creates for the injector.
const ConfigurationName = "weft-sidecar-injector"

// CABundlePatcher keeps the CA bundle of a MutatingWebhookConfiguration's
// webhooks equal to the mesh CA's roots, so the API server trusts the
// injector's certificate: at start, whenever the configuration is
// (re)applied, and at every resync.
type CABundlePatcher struct {
	// Client reaches the API server.
	Client kubernetes.Interface
	// Name is the configuration's name (ConfigurationName when empty).
	Name string
	// Bundle returns the PEM the webhooks must trust.
	Bundle func() []byte
	// Logger receives the patcher's logs; nil discards them.
	Logger *slog.Logger
}

func (p *CABundlePatcher) name() string {
	if p.Name == "" {
		return ConfigurationName
	}
	return p.Name
}

// Reconcile sets the CA bundle of every webhook of the configuration that
// does not have it yet. A configuration not (yet) installed is no error:
// Run patches it when it appears.
func (p *CABundlePatcher) Reconcile(ctx context.Context) error {
	api := p.Client.AdmissionregistrationV1().MutatingWebhookConfigurations()
	cfg, err := api.Get(ctx, p.name(), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading MutatingWebhookConfiguration %s: %w", p.name(), err)
	}
	return p.patch(ctx, cfg)
}

func (p *CABundlePatcher) patch(ctx context.Context, cfg *admissionregv1.MutatingWebhookConfiguration) error {
	bundle := p.Bundle()
	cfg = cfg.DeepCopy()
	changed := 0
	for i := range cfg.Webhooks {
		if !bytes.Equal(cfg.Webhooks[i].ClientConfig.CABundle, bundle) {
			cfg.Webhooks[i].ClientConfig.CABundle = bundle
			changed++
		}
	}
	if changed == 0 {
		return nil
	}
	// Update, not a patch: its resourceVersion makes a concurrent change
	// fail (Conflict) instead of being overwritten; the watch then brings
	// the new version back here.
	if _, err := p.Client.AdmissionregistrationV1().MutatingWebhookConfigurations().Update(ctx, cfg, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("setting the CA bundle of MutatingWebhookConfiguration %s: %w", cfg.Name, err)
	}
	p.log().Info("set the injector's CA bundle", "configuration", cfg.Name, "webhooks", changed)
	return nil
}

func (p *CABundlePatcher) log() *slog.Logger {
	if p.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return p.Logger.With("component", "injector")
}

// Run watches the configuration and patches it until ctx ends; failures
// are logged and retried at the next event or resync.
func (p *CABundlePatcher) Run(ctx context.Context, resync time.Duration) {
	factory := informers.NewSharedInformerFactoryWithOptions(p.Client, resync,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", p.name()).String()
		}))
	inf := factory.Admissionregistration().V1().MutatingWebhookConfigurations().Informer()
	handle := func(obj any) {
		cfg, ok := obj.(*admissionregv1.MutatingWebhookConfiguration)
		if !ok || cfg.Name != p.name() {
			return
		}
		if err := p.patch(ctx, cfg); err != nil && ctx.Err() == nil {
			p.log().Warn("patching the CA bundle", "error", err)
		}
	}
	inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    handle,
		UpdateFunc: func(_, obj any) { handle(obj) },
	})
	factory.Start(ctx.Done())
	<-ctx.Done()
	factory.Shutdown()
}
