package bookinfo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"sync"
	"time"
)

const sessionCookie = "session"

type productPage struct {
	cfg  Config
	page *template.Template
}

func newProductPage(cfg Config) http.Handler {
	p := &productPage{cfg: cfg, page: template.Must(template.New("page").Funcs(template.FuncMap{
		"stars": stars,
	}).Parse(pageHTML))}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", p.index)
	mux.HandleFunc("GET /health", health)
	mux.HandleFunc("GET /productpage", p.productPage)
	mux.HandleFunc("POST /login", p.login)
	mux.HandleFunc("GET /logout", p.logout)
	mux.HandleFunc("GET /static/style.css", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/css")
		fmt.Fprint(w, styleCSS)
	})
	mux.HandleFunc("GET /api/v1/products", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, []map[string]any{product})
	})
	mux.HandleFunc("GET /api/v1/products/{id}", func(w http.ResponseWriter, r *http.Request) { p.apiProxy(w, r, "details") })
	mux.HandleFunc("GET /api/v1/products/{id}/reviews", func(w http.ResponseWriter, r *http.Request) { p.apiProxy(w, r, "reviews") })
	mux.HandleFunc("GET /api/v1/products/{id}/ratings", func(w http.ResponseWriter, r *http.Request) { p.apiProxy(w, r, "ratings") })
	return withUser(mux)
}

var product = map[string]any{
	"id":              0,
	"title":           "The Comedy of Errors",
	"descriptionHtml": "<a href=\"https://en.wikipedia.org/wiki/The_Comedy_of_Errors\">Wikipedia Summary</a>: The Comedy of Errors is one of <b>William Shakespeare's</b> early plays. It is his shortest and one of his most farcical comedies, with a major part of the humour coming from slapstick and mistaken identity, in addition to puns and word play.",
}

// withUser sets the end-user header from the session cookie, as Istio's productpage does.
func withUser(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Header.Del("end-user")
		if c, err := r.Cookie(sessionCookie); err == nil && c.Value != "" {
			r.Header.Set("end-user", c.Value)
		}
		next.ServeHTTP(w, r)
	})
}

func (p *productPage) index(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprint(w, `<!DOCTYPE html><html><head><title>Simple Bookstore App</title><link rel="stylesheet" href="static/style.css"></head>
<body><h3>Hello! This is a simple bookstore application consisting of three services as shown below</h3>
<p>productpage → details, reviews (v1, v2, v3) → ratings</p><p><a href="productpage">Normal user</a> · <a href="productpage?u=test">Test user</a></p></body></html>`)
}

func (p *productPage) login(w http.ResponseWriter, r *http.Request) {
	user := r.FormValue("username")
	if user == "" {
		http.Error(w, "username is required", http.StatusBadRequest)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: user, Path: "/", HttpOnly: true})
	http.Redirect(w, r, "/productpage", http.StatusFound)
}

func (p *productPage) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1})
	http.Redirect(w, r, "/productpage", http.StatusFound)
}

type pageData struct {
	User         string
	Product      map[string]any
	Description  template.HTML
	Details      *DetailsInfo
	DetailsError string
	Reviews      *ReviewsInfo
	ReviewsError string
}

// stars draws n of five stars.
func stars(n int) string {
	n = max(0, min(n, 5))
	return strings.Repeat("★", n) + strings.Repeat("☆", 5-n)
}

func (p *productPage) productPage(w http.ResponseWriter, r *http.Request) {
	data := pageData{User: r.Header.Get("end-user"), Product: product, Description: template.HTML(product["descriptionHtml"].(string))}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		var d DetailsInfo
		if err := p.getJSON(r, p.cfg.DetailsURL+"/details/0", 5*time.Second, 0, &d); err != nil {
			data.DetailsError = "Sorry, product details are currently unavailable for this book."
			return
		}
		data.Details = &d
	}()
	go func() {
		defer wg.Done()
		var rv ReviewsInfo
		// Istio's productpage: 3 s timeout and one retry.
		if err := p.getJSON(r, p.cfg.ReviewsURL+"/reviews/0", 3*time.Second, 1, &rv); err != nil {
			data.ReviewsError = "Sorry, product reviews are currently unavailable for this book."
			return
		}
		data.Reviews = &rv
	}()
	wg.Wait()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := p.page.Execute(w, data); err != nil {
		p.cfg.Logger.Error("rendering the product page", "err", err)
	}
}

// getJSON GETs url with the propagated headers, a timeout per try and retries.
func (p *productPage) getJSON(in *http.Request, url string, timeout time.Duration, retries int, v any) error {
	var err error
	for try := 0; try <= retries; try++ {
		if err = p.tryJSON(in, url, timeout, v); err == nil {
			return nil
		}
		p.cfg.Logger.Warn("call failed", "url", url, "try", try+1, "err", err)
	}
	return err
}

func (p *productPage) tryJSON(in *http.Request, url string, timeout time.Duration, v any) error {
	ctx, cancel := context.WithTimeout(in.Context(), timeout)
	defer cancel()
	req, err := outbound(ctx, in, url)
	if err != nil {
		return err
	}
	resp, err := p.cfg.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: HTTP %d", url, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("%s: %w", url, err)
	}
	return nil
}

// apiProxy serves /api/v1/products/... from the named backend.
func (p *productPage) apiProxy(w http.ResponseWriter, r *http.Request, backend string) {
	id := r.PathValue("id")
	base := map[string]string{"details": p.cfg.DetailsURL + "/details/", "reviews": p.cfg.ReviewsURL + "/reviews/", "ratings": p.cfg.RatingsURL + "/ratings/"}[backend]
	var v any
	if err := p.getJSON(r, base+id, 3*time.Second, 0, &v); err != nil {
		var status = http.StatusServiceUnavailable
		if errors.Is(err, context.DeadlineExceeded) {
			status = http.StatusGatewayTimeout
		}
		writeJSON(w, status, map[string]string{"error": backend + " not available"})
		return
	}
	writeJSON(w, http.StatusOK, v)
}
