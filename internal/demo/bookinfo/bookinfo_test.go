package bookinfo

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"
)

// recorder remembers the headers of the last request an app served.
type recorder struct {
	mu   sync.Mutex
	last http.Header
}

func (r *recorder) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.last = req.Header.Clone()
		r.mu.Unlock()
		h.ServeHTTP(w, req)
	})
}

func (r *recorder) header(name string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.last == nil {
		return ""
	}
	return r.last.Get(name)
}

// mesh is the four apps wired to each other through test servers.
type mesh struct {
	page                     *httptest.Server
	details, reviews, rating recorder
}

type meshOpts struct {
	version     string                          // reviews version
	noRatings   bool                            // ratings is down
	noDetails   bool                            // details is down
	reviewsWrap func(http.Handler) http.Handler // wraps reviews (e.g. to fail)
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newMesh(t *testing.T, o meshOpts) *mesh {
	t.Helper()
	m := &mesh{}
	cfg := Config{Version: "v1", PodName: "test-pod", Client: &http.Client{}, Logger: quiet()}
	serve := func(app string, c Config, rec *recorder, down bool) string {
		h, err := Handler(app, c)
		if err != nil {
			t.Fatal(err)
		}
		s := httptest.NewServer(rec.wrap(h))
		t.Cleanup(s.Close)
		if down {
			s.Close()
		}
		return s.URL
	}
	cfg.RatingsURL = serve(Ratings, cfg, &m.rating, o.noRatings)
	cfg.DetailsURL = serve(Details, cfg, &m.details, o.noDetails)
	rc := cfg
	rc.Version, rc.PodName = o.version, "reviews-"+o.version+"-1"
	h, err := Handler(Reviews, rc)
	if err != nil {
		t.Fatal(err)
	}
	h = m.reviews.wrap(h)
	if o.reviewsWrap != nil {
		h = o.reviewsWrap(h)
	}
	rs := httptest.NewServer(h)
	t.Cleanup(rs.Close)
	cfg.ReviewsURL = rs.URL
	ph, err := Handler(ProductPage, cfg)
	if err != nil {
		t.Fatal(err)
	}
	m.page = httptest.NewServer(ph)
	t.Cleanup(m.page.Close)
	return m
}

func get(t *testing.T, c *http.Client, u string, hdr map[string]string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: HTTP %d: %s", u, resp.StatusCode, body)
	}
	return string(body)
}

func TestProductPageStarsPerVersion(t *testing.T) {
	tests := []struct {
		version   string
		noRatings bool
		want      []string
		notWant   []string
	}{
		{version: "v1", want: []string{"Reviews served by: <b>reviews-v1-1</b>", "Reviewer1", "Reviewer2"}, notWant: []string{"★", "color="}},
		{version: "v2", want: []string{`color="black"`, "★★★★★", "★★★★☆", "reviews-v2-1"}, notWant: []string{`color="red"`}},
		{version: "v3", want: []string{`color="red"`, "★★★★★", "★★★★☆", "reviews-v3-1"}, notWant: []string{`color="black"`}},
		{version: "v2", noRatings: true, want: []string{"Ratings service is currently unavailable", "Reviewer1"}, notWant: []string{"★"}},
		{version: "v1", noRatings: true, want: []string{"Reviewer1"}, notWant: []string{"Ratings service is currently unavailable"}},
	}
	for _, tc := range tests {
		t.Run(tc.version, func(t *testing.T) {
			m := newMesh(t, meshOpts{version: tc.version, noRatings: tc.noRatings})
			page := get(t, http.DefaultClient, m.page.URL+"/productpage", nil)
			for _, w := range append(tc.want, "The Comedy of Errors", "PublisherA", "123-1234567890") {
				if !strings.Contains(page, w) {
					t.Errorf("page lacks %q", w)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(page, w) {
					t.Errorf("page has %q", w)
				}
			}
		})
	}
}

func TestProductPageFailures(t *testing.T) {
	failing := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "down", http.StatusServiceUnavailable)
		})
	}
	tests := []struct {
		name    string
		opts    meshOpts
		want    []string // Istio's productpage texts, in this order
		notWant string
	}{
		{"details down", meshOpts{version: "v1", noDetails: true},
			[]string{"Error fetching product details!", "Sorry, product details are currently unavailable for this book."}, "Error fetching product reviews!"},
		{"reviews down", meshOpts{version: "v1", reviewsWrap: failing},
			[]string{"Error fetching product reviews!", "Sorry, product reviews are currently unavailable for this book."}, "Error fetching product details!"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := newMesh(t, tc.opts)
			page := get(t, http.DefaultClient, m.page.URL+"/productpage", nil)
			at := 0
			for _, w := range tc.want {
				i := strings.Index(page[at:], w)
				if i < 0 {
					t.Fatalf("page lacks %q after byte %d:\n%s", w, at, page)
				}
				at += i + len(w)
			}
			if strings.Contains(page, tc.notWant) {
				t.Errorf("page has %q", tc.notWant)
			}
		})
	}
}

func TestProductPageRetriesReviewsOnce(t *testing.T) {
	var calls atomic.Int32
	failFirst := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if calls.Add(1) == 1 {
				http.Error(w, "flaky", http.StatusServiceUnavailable)
				return
			}
			h.ServeHTTP(w, r)
		})
	}
	m := newMesh(t, meshOpts{version: "v2", reviewsWrap: failFirst})
	page := get(t, http.DefaultClient, m.page.URL+"/productpage", nil)
	if !strings.Contains(page, "Reviews served by: <b>reviews-v2-1</b>") {
		t.Errorf("reviews missing after one failure:\n%s", page)
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("reviews called %d times, want 2", n)
	}
}

func TestLoginForwardsEndUser(t *testing.T) {
	m := newMesh(t, meshOpts{version: "v2"})
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Jar: jar}
	resp, err := c.PostForm(m.page.URL+"/login", url.Values{"username": {"jason"}, "passwd": {"anything"}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/productpage" {
		t.Fatalf("login: HTTP %d at %s", resp.StatusCode, resp.Request.URL.Path)
	}
	if !strings.Contains(string(body), "jason") {
		t.Errorf("page does not greet jason")
	}
	for name, rec := range map[string]*recorder{"details": &m.details, "reviews": &m.reviews, "ratings": &m.rating} {
		if got := rec.header("end-user"); got != "jason" {
			t.Errorf("%s got end-user %q, want jason", name, got)
		}
	}
	get(t, c, m.page.URL+"/logout", nil)
	get(t, c, m.page.URL+"/productpage", nil)
	if got := m.reviews.header("end-user"); got != "" {
		t.Errorf("after logout reviews got end-user %q", got)
	}
}

func TestHeaderPropagation(t *testing.T) {
	m := newMesh(t, meshOpts{version: "v3"})
	hdr := map[string]string{
		"x-request-id": "req-1", "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
		"tracestate": "k=v", "x-b3-traceid": "80f198ee56343ba864fe8b2a57d3eff7", "x-b3-spanid": "e457b5a2e4d86bd1",
		"x-b3-parentspanid": "05e3ac9a4f6e3b90", "x-b3-sampled": "1", "x-b3-flags": "1", "b3": "80f198ee-e457b5a2-1",
		"x-ot-span-context": "ctx", "x-unrelated": "no",
	}
	get(t, http.DefaultClient, m.page.URL+"/productpage", hdr)
	for name, rec := range map[string]*recorder{"details": &m.details, "reviews": &m.reviews, "ratings": &m.rating} {
		for k, v := range hdr {
			want := v
			if k == "x-unrelated" {
				want = ""
			}
			if got := rec.header(k); got != want {
				t.Errorf("%s got %s %q, want %q", name, k, got, want)
			}
		}
	}
}

func TestAPIAndStatic(t *testing.T) {
	m := newMesh(t, meshOpts{version: "v2"})
	tests := []struct {
		path, want string
	}{
		{"/api/v1/products", `"title":"The Comedy of Errors"`},
		{"/api/v1/products/0", `"ISBN-10":"1234567890"`},
		{"/api/v1/products/0/reviews", `"podname":"reviews-v2-1"`},
		{"/api/v1/products/0/ratings", `"Reviewer1":5`},
		{"/static/style.css", "font-family"},
		{"/health", "Healthy"},
		{"/", "bookstore"},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			if body := get(t, http.DefaultClient, m.page.URL+tc.path, nil); !strings.Contains(body, tc.want) {
				t.Errorf("%s: %q lacks %q", tc.path, body, tc.want)
			}
		})
	}
}

func TestDetailsAndRatingsJSON(t *testing.T) {
	for _, app := range []string{Details, Ratings} {
		h, err := Handler(app, Config{Logger: quiet()})
		if err != nil {
			t.Fatal(err)
		}
		s := httptest.NewServer(h)
		t.Cleanup(s.Close)
		var got map[string]any
		if err := json.Unmarshal([]byte(get(t, http.DefaultClient, s.URL+"/"+app+"/0", nil)), &got); err != nil {
			t.Fatal(err)
		}
		keys := map[string][]string{Details: {"id", "author", "year", "type", "pages", "publisher", "language", "ISBN-10", "ISBN-13"}, Ratings: {"id", "ratings"}}[app]
		for _, k := range keys {
			if _, ok := got[k]; !ok {
				t.Errorf("%s: no %q in %v", app, k, got)
			}
		}
		resp, err := http.Get(s.URL + "/" + app + "/abc")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s/abc: HTTP %d, want 400", app, resp.StatusCode)
		}
	}
	if _, err := Handler("nope", Config{}); err == nil {
		t.Error("Handler(nope) = nil error")
	}
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
