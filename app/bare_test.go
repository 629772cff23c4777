package app_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/trustchain/trustchain/domain"
	"github.com/trustchain/trustchain/ports"
)

// bareProduct is the bare chain's wire form: what a hand-written service
// would declare.
type bareProduct struct {
	ID    int64           `json:"id"`
	Name  string          `json:"name"`
	Price json.RawMessage `json:"price"`
}

// startBareChain starts the floor the side-by-side benchmark measures
// trustchain against: the same three hops over loopback and the same
// store, written the plain way (net/http, encoding/json), and no checks of
// any kind: no token, no workload identity, no limits, no metrics. It
// exists only in tests; nothing like it is in the binary. It returns A's
// URL.
func startBareChain(tb testing.TB, store ports.ProductSource) string {
	tb.Helper()
	first, err := domain.NewPageRequest(0, 100)
	if err != nil {
		tb.Fatal(err)
	}
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		page, err := store.ListProducts(r.Context(), first)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		out := make([]bareProduct, 0, len(page.Products()))
		for _, p := range page.Products() {
			out = append(out, bareProduct{ID: p.ID(), Name: p.Name(), Price: json.RawMessage(p.Price().String())})
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(out)
	}))
	tb.Cleanup(b.Close)
	c := httptest.NewServer(bareForwarder(b.URL, false))
	tb.Cleanup(c.Close)
	a := httptest.NewServer(bareForwarder(c.URL, true))
	tb.Cleanup(a.Close)
	return a.URL
}

// bareForwarder passes the caller's Authorization on, unread, and answers
// with what the next hop said, decoded and encoded again; the gateway
// wraps it in the envelope.
func bareForwarder(upstream string, envelope bool) http.Handler {
	client := &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, _ := http.NewRequestWithContext(r.Context(), http.MethodGet, upstream+"/products", nil)
		req.Header.Set("Authorization", r.Header.Get("Authorization"))
		resp, err := client.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		var products []bareProduct
		if err := json.Unmarshal(body, &products); err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if !envelope {
			_ = json.NewEncoder(w).Encode(products)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{
			"products":          products,
			"serviceA_metadata": "request processed at " + time.Now().UTC().Format(time.RFC3339),
		})
	})
}
