package wire

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/trustchain/trustchain/domain"
)

func product(tb testing.TB, id int64, name, price string) domain.Product {
	tb.Helper()
	m, err := domain.ParseMoney(price)
	if err != nil {
		tb.Fatal(err)
	}
	p, err := domain.NewProduct(id, name, m)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

func TestWireShapes(t *testing.T) {
	at := time.Date(2025, 2, 12, 9, 0, 0, 0, time.FixedZone("CET", 3600))
	laptop := product(t, 1, "Laptop", "1000")
	req, _ := domain.NewPageRequest(0, 10)
	one, _ := domain.NewPage(req, []domain.Product{laptop}, false)
	empty, _ := domain.NewPage(req, nil, false)
	tests := []struct {
		name string
		got  []byte
		want string
	}{
		{"product", AppendProduct(nil, laptop), `{"id":1,"name":"Laptop","price":1000}`},
		{"the seed's answer", AppendPageEnvelope(nil, one, domain.NewEnvelope(at)),
			`{"products":[{"id":1,"name":"Laptop","price":1000}],"serviceA_metadata":"request processed at 2025-02-12T08:00:00Z"}`},
		{"empty is [] not null", AppendPageEnvelope(nil, empty, domain.NewEnvelope(at)),
			`{"products":[],"serviceA_metadata":"request processed at 2025-02-12T08:00:00Z"}`},
		{"one product at A", AppendProductEnvelope(nil, laptop, domain.NewEnvelope(at)),
			`{"product":{"id":1,"name":"Laptop","price":1000},"serviceA_metadata":"request processed at 2025-02-12T08:00:00Z"}`},
		{"error", AppendError(nil, ErrorBody{Code: "not_found", Message: `no "such" product`, RequestID: "r-1"}),
			`{"error":"not_found","message":"no \"such\" product","request_id":"r-1"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if string(tt.got) != tt.want {
				t.Fatalf("got  %s\nwant %s", tt.got, tt.want)
			}
		})
	}
}

// TestProductEncodingMatchesEncodingJSON holds the hand-written encoder to
// the standard library's reading of the same values, for names that need
// escaping.
func TestProductEncodingMatchesEncodingJSON(t *testing.T) {
	for _, name := range []string{
		`O'Reilly "Go" \ book; --`, "tab\tnew\nline\x01", "<script>&amp;</script>", "Café 日本語 🍣", "\u2028\u2029",
		strings.Repeat("é", domain.MaxNameLength),
	} {
		p := product(t, 42, name, "19.99")
		got := AppendProduct(nil, p)
		var back struct {
			ID    int64       `json:"id"`
			Name  string      `json:"name"`
			Price json.Number `json:"price"`
		}
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("%q: %s is not JSON: %v", name, got, err)
		}
		if back.ID != 42 || back.Name != name || back.Price != "19.99" {
			t.Fatalf("%q encoded as %s, read back as %+v", name, got, back)
		}
		if len(got) > maxProductBytes {
			t.Fatalf("%q: %d bytes, more than maxProductBytes %d", name, len(got), maxProductBytes)
		}
	}
}

// TestBodyCapsFollowThePage: the largest product the domain allows fits the
// per-product bound even fully escaped, so a full page always fits its cap.
func TestBodyCapsFollowThePage(t *testing.T) {
	worst := `{"id":9223372036854775807,"name":"` + strings.Repeat(`\ud83d\ude00`, domain.MaxNameLength) + `","price":9999999999.99}`
	if len(worst) > maxProductBytes {
		t.Fatalf("a fully escaped product takes %d bytes, maxProductBytes is %d", len(worst), maxProductBytes)
	}
	page := "[" + strings.TrimSuffix(strings.Repeat(worst+",", 1000), ",") + "]"
	if int64(len(page)) > PageBodyLimit(1000) {
		t.Fatalf("a full page of 1000 takes %d bytes, the cap is %d", len(page), PageBodyLimit(1000))
	}
	products, err := DecodeProducts(strings.NewReader(page), 1000)
	if err != nil || len(products) != 1000 {
		t.Fatalf("decode the worst page: %d, %v", len(products), err)
	}
}

func seedProducts(f *testing.F) {
	f.Add(`[]`)
	f.Add(`[{"id":1,"name":"Laptop","price":1000},{"id":2,"name":"Cable","price":19.99}]`)
	f.Add(`[{"id":1,"name":"L\u00e9","price":0.5}]`)
	f.Add(`[{"id":1,"name":"a","price":1}]]]]}}}`)
	f.Add(`[{"id":1,"id":2,"name":"a","price":1}]`)
	f.Add(`[{"id":2,"name":"a","price":1},{"id":1,"name":"b","price":1}]`)
	f.Add(`[{"id":1e2,"name":"a","price":1}]`)
	f.Add(`null`)
}

// FuzzDecodeProducts: any body decodes or is refused, never panics, and
// whatever is accepted is valid JSON that encodes back to the same
// products.
func FuzzDecodeProducts(f *testing.F) {
	seedProducts(f)
	f.Fuzz(func(t *testing.T, body string) {
		products, err := DecodeProducts(strings.NewReader(body), 100)
		if err != nil {
			return
		}
		if !json.Valid([]byte(body)) {
			t.Fatalf("accepted invalid JSON %q", body)
		}
		again, err := DecodeProducts(bytes.NewReader(AppendProducts(nil, products)), 100)
		if err != nil || len(again) != len(products) {
			t.Fatalf("re-encoding %q does not decode: %v", body, err)
		}
		for i := range products {
			if again[i] != products[i] {
				t.Fatalf("round trip changed product %d: %+v -> %+v", i, products[i], again[i])
			}
		}
	})
}

func FuzzDecodeError(f *testing.F) {
	f.Add(`{"error":"invalid_token","message":"x","request_id":"r"}`)
	f.Add(`{"error":"a","message":"b","debug":1}`)
	f.Add(`<html>`)
	f.Fuzz(func(t *testing.T, body string) {
		e, err := DecodeError(strings.NewReader(body))
		if err == nil && (e.Code == "" || e.Message == "" || !json.Valid([]byte(body))) {
			t.Fatalf("accepted %q as %+v", body, e)
		}
	})
}

var linkForm = regexp.MustCompile(`^</products\?after=(\d+)&limit=(\d+)>; rel="next"$`)

// FuzzParseNextLink: a Link header is absent, or exactly the form a hop
// writes, which then names a valid page request.
func FuzzParseNextLink(f *testing.F) {
	f.Add(`</products?after=2&limit=2>; rel="next"`)
	f.Add(`<https://evil.example/products?after=2&limit=2>; rel="next"`)
	f.Add(`</products?after=-1&limit=2>; rel="next"`)
	f.Add(`</products?after=-0&limit=1>; rel="next"`)
	f.Add(`</products?after=1&limit=99999>; rel="next"`)
	f.Fuzz(func(t *testing.T, header string) {
		req, ok, err := ParseNextLink([]string{header})
		if err != nil {
			return
		}
		if !ok || !linkForm.MatchString(header) || req.Limit() < 1 || req.Limit() > domain.MaxPageLimit || req.After() < 0 {
			t.Fatalf("accepted %q as %+v", header, req)
		}
	})
}
