// Package bookinfo is Istio's Bookinfo sample written in Go: productpage,
// details, reviews (v1, v2, v3) and ratings. The apps call each other by
// mesh name through the HTTP proxy their sidecar gives them, and forward the
// headers Istio's tasks rely on (end-user, x-request-id, trace context).
package bookinfo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Apps by name.
const (
	ProductPage = "productpage"
	Details     = "details"
	Reviews     = "reviews"
	Ratings     = "ratings"
)

// Config is what an app needs to know of itself and its peers.
type Config struct {
	// Version is the app's version (reviews: v1 no stars, v2 black, v3 red).
	Version string
	// PodName names the instance, shown as "Reviews served by".
	PodName string
	// Client makes outbound calls (through the sidecar's HTTP proxy).
	Client *http.Client
	// DetailsURL, ReviewsURL and RatingsURL are the peers' base URLs.
	DetailsURL, ReviewsURL, RatingsURL string
	Logger                             *slog.Logger
}

// DefaultConfig returns a Config calling peers by mesh name through HTTP_PROXY.
func DefaultConfig(version, pod string) Config {
	return Config{
		Version:    version,
		PodName:    pod,
		Client:     &http.Client{Transport: &http.Transport{Proxy: http.ProxyFromEnvironment, MaxIdleConnsPerHost: 16}},
		DetailsURL: "http://details:9080",
		ReviewsURL: "http://reviews:9080",
		RatingsURL: "http://ratings:9080",
		Logger:     slog.Default(),
	}
}

// Handler returns the http.Handler of the named app.
func Handler(app string, cfg Config) (http.Handler, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.Logger = cfg.Logger.With("component", "bookinfo-"+app)
	switch app {
	case ProductPage:
		return newProductPage(cfg), nil
	case Details:
		return detailsHandler(), nil
	case Reviews:
		return newReviews(cfg), nil
	case Ratings:
		return ratingsHandler(), nil
	}
	return nil, fmt.Errorf("unknown Bookinfo app %q (want productpage, details, reviews or ratings)", app)
}

// Run serves the named app on addr until ctx ends.
func Run(ctx context.Context, app, addr string, cfg Config) error {
	h, err := Handler(app, cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("%s: %w", app, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("%s: %w", app, err)
	}
	return nil
}

// forwarded are the headers every app passes on to the services it calls.
var forwarded = []string{
	"end-user", "x-request-id", "traceparent", "tracestate", "x-b3-traceid", "x-b3-spanid",
	"x-b3-parentspanid", "x-b3-sampled", "x-b3-flags", "b3", "x-ot-span-context", "user-agent",
}

// outbound builds a GET to url carrying the incoming request's propagated headers.
func outbound(ctx context.Context, in *http.Request, url string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	for _, h := range forwarded {
		if v := in.Header.Get(h); v != "" {
			req.Header.Set(h, v)
		}
	}
	return req, nil
}

func health(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintln(w, `{"status": "Healthy"}`)
}
