package bookinfo

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func productID(s string) (int, bool) {
	id, err := strconv.Atoi(s)
	return id, err == nil
}

// DetailsInfo is the details service's answer.
type DetailsInfo struct {
	ID        int    `json:"id"`
	Author    string `json:"author"`
	Year      int    `json:"year"`
	Type      string `json:"type"`
	Pages     int    `json:"pages"`
	Publisher string `json:"publisher"`
	Language  string `json:"language"`
	ISBN10    string `json:"ISBN-10"`
	ISBN13    string `json:"ISBN-13"`
}

func detailsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", health)
	mux.HandleFunc("GET /details/{id}", func(w http.ResponseWriter, r *http.Request) {
		id, ok := productID(r.PathValue("id"))
		if !ok {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "please provide numeric product id"})
			return
		}
		writeJSON(w, http.StatusOK, DetailsInfo{ID: id, Author: "William Shakespeare", Year: 1595, Type: "paperback",
			Pages: 200, Publisher: "PublisherA", Language: "English", ISBN10: "1234567890", ISBN13: "123-1234567890"})
	})
	return mux
}

// RatingsInfo is the ratings service's answer.
type RatingsInfo struct {
	ID      int            `json:"id"`
	Ratings map[string]int `json:"ratings"`
}

func ratingsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", health)
	mux.HandleFunc("GET /ratings/{id}", func(w http.ResponseWriter, r *http.Request) {
		id, ok := productID(r.PathValue("id"))
		if !ok {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "please provide numeric product id"})
			return
		}
		writeJSON(w, http.StatusOK, RatingsInfo{ID: id, Ratings: map[string]int{"Reviewer1": 5, "Reviewer2": 4}})
	})
	return mux
}

// ReviewsInfo is the reviews service's answer.
type ReviewsInfo struct {
	ID          string   `json:"id"`
	PodName     string   `json:"podname"`
	ClusterName string   `json:"clustername"`
	Reviews     []Review `json:"reviews"`
}

// Review is one reviewer's text and, from v2 on, rating.
type Review struct {
	Reviewer string  `json:"reviewer"`
	Text     string  `json:"text"`
	Rating   *Rating `json:"rating,omitempty"`
}

// Rating is stars in a color, or the error that kept them away.
type Rating struct {
	Stars int    `json:"stars,omitempty"`
	Color string `json:"color,omitempty"`
	Error string `json:"error,omitempty"`
}

type reviews struct{ cfg Config }

func newReviews(cfg Config) http.Handler {
	rv := &reviews{cfg: cfg}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", health)
	mux.HandleFunc("GET /reviews/{id}", rv.serve)
	return mux
}

func (rv *reviews) serve(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	out := ReviewsInfo{ID: id, PodName: rv.cfg.PodName, ClusterName: "null", Reviews: []Review{
		{Reviewer: "Reviewer1", Text: "An extremely entertaining play by Shakespeare. The slapstick humour is refreshing!"},
		{Reviewer: "Reviewer2", Text: "Absolutely fun and entertaining. The play lacks thematic depth when compared to other plays by Shakespeare."},
	}}
	color := map[string]string{"v2": "black", "v3": "red"}[rv.cfg.Version]
	if color != "" {
		ratings, err := rv.ratings(r, id)
		for i := range out.Reviews {
			if err != nil {
				out.Reviews[i].Rating = &Rating{Error: "Ratings service is currently unavailable"}
				continue
			}
			out.Reviews[i].Rating = &Rating{Stars: ratings.Ratings[out.Reviews[i].Reviewer], Color: color}
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// ratings calls the ratings service with a 10 s timeout, as Istio's reviews does.
func (rv *reviews) ratings(in *http.Request, id string) (*RatingsInfo, error) {
	ctx, cancel := context.WithTimeout(in.Context(), 10*time.Second)
	defer cancel()
	req, err := outbound(ctx, in, rv.cfg.RatingsURL+"/ratings/"+id)
	if err != nil {
		return nil, err
	}
	resp, err := rv.cfg.Client.Do(req)
	if err != nil {
		rv.cfg.Logger.Warn("ratings call failed", "err", err)
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("ratings: HTTP %d", resp.StatusCode)
	}
	var out RatingsInfo
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("ratings: %w", err)
	}
	return &out, nil
}
