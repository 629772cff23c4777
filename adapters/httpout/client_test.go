package httpout_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trustchain/trustchain/adapters/httpout"
	"github.com/trustchain/trustchain/adapters/relay"
	"github.com/trustchain/trustchain/domain"
)

const token = "header.payload.signature"

// withRelay returns a context carrying the token and the headers of a
// client request, as the inbound middleware would build it.
func withRelay(t testing.TB, header http.Header) context.Context {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, "/products", nil)
	for k, v := range header {
		r.Header[k] = v
	}
	return relay.NewContext(context.Background(), relay.FromRequest(r, token))
}

func newClient(t testing.TB, url string, timeout time.Duration) *httpout.Client {
	t.Helper()
	c, err := httpout.New(httpout.Config{URL: url, Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

func serve(t testing.TB, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s
}

func TestListProductsAnswers(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		body    string
		wantErr error
		want    string // JSON of the products on success
	}{
		{name: "products", status: 200, body: `[{"id":1,"name":"Laptop","price":1000},{"id":2,"name":"Cable","price":19.99}]`, want: `[{"id":1,"name":"Laptop","price":1000},{"id":2,"name":"Cable","price":19.99}]`},
		{name: "empty", status: 200, body: `[]`, want: `[]`},
		{name: "null is not a list", status: 200, body: `null`, wantErr: domain.ErrUpstreamBadResponse},
		{name: "object", status: 200, body: `{"products":[]}`, wantErr: domain.ErrUpstreamBadResponse},
		{name: "truncated", status: 200, body: `[{"id":1,"name":"Laptop"`, wantErr: domain.ErrUpstreamBadResponse},
		{name: "trailing data", status: 200, body: `[] []`, wantErr: domain.ErrUpstreamBadResponse},
		{name: "invalid product", status: 200, body: `[{"id":-1,"name":"Laptop","price":1}]`, wantErr: domain.ErrUpstreamBadResponse},
		{name: "price as string", status: 200, body: `[{"id":1,"name":"Laptop","price":"1000"}]`, wantErr: domain.ErrUpstreamBadResponse},
		{name: "html", status: 200, body: `<html>oops</html>`, wantErr: domain.ErrUpstreamBadResponse},
		{name: "server error", status: 500, body: `{}`, wantErr: domain.ErrUpstreamUnavailable},
		{name: "unavailable", status: 503, body: `{}`, wantErr: domain.ErrUpstreamUnavailable},
		{name: "downstream timeout stays a timeout", status: 504, body: `{}`, wantErr: domain.ErrUpstreamTimeout},
		{name: "not found", status: 404, body: `{}`, wantErr: domain.ErrUpstreamBadResponse},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := serve(t, func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			})
			got, err := newClient(t, s.URL, 5*time.Second).ListProducts(withRelay(t, nil))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("error = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if js := marshal(t, got); js != tt.want {
				t.Fatalf("products = %s, want %s", js, tt.want)
			}
		})
	}
}

func TestRejectionIsPassedBackUnchanged(t *testing.T) {
	for _, status := range []int{http.StatusUnauthorized, http.StatusForbidden} {
		s := serve(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			w.WriteHeader(status)
			_, _ = w.Write([]byte(`{"error":"invalid_token","message":"x"}`))
		})
		_, err := newClient(t, s.URL, 5*time.Second).ListProducts(withRelay(t, nil))
		var rej *domain.UpstreamRejection
		if !errors.As(err, &rej) {
			t.Fatalf("status %d: error = %v, want UpstreamRejection", status, err)
		}
		if rej.Status != status || rej.Challenge != `Bearer error="invalid_token"` || string(rej.Body) != `{"error":"invalid_token","message":"x"}` {
			t.Fatalf("rejection = %+v", rej)
		}
	}
}

func TestForwardsOnlyTokenAndTracingHeaders(t *testing.T) {
	var got http.Header
	s := serve(t, func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		_, _ = w.Write([]byte(`[]`))
	})
	in := http.Header{
		"Cookie":                  {"session=secret"},
		"X-Custom":                {"edge-only"},
		"X-Forwarded-For":         {"203.0.113.9"},
		"X-Request-Id":            {"req-1"},
		"Traceparent":             {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
		"Tracestate":              {"vendor=1"},
		"B3":                      {"80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1"},
		"X-B3-Traceid":            {"80f198ee56343ba864fe8b2a57d3eff7"},
		"X-B3-Spanid":             {"e457b5a2e4d86bd1"},
		"X-B3-Sampled":            {"1"},
		"Authorization":           {"Bearer something-else"},
		"X-Forwarded-Client-Cert": {"By=spiffe://x;URI=spiffe://y"},
	}
	if _, err := newClient(t, s.URL, 5*time.Second).ListProducts(withRelay(t, in)); err != nil {
		t.Fatal(err)
	}
	if a := got.Get("Authorization"); a != "Bearer "+token {
		t.Errorf("Authorization = %q, want the verified token unchanged", a)
	}
	for _, h := range []string{"X-Request-Id", "Traceparent", "Tracestate", "B3", "X-B3-Traceid", "X-B3-Spanid", "X-B3-Sampled"} {
		if got.Get(h) != in.Get(h) {
			t.Errorf("%s = %q, want %q", h, got.Get(h), in.Get(h))
		}
	}
	for _, h := range []string{"Cookie", "X-Custom", "X-Forwarded-For", "X-Forwarded-Client-Cert", "X-B3-Parentspanid"} {
		if v := got.Get(h); v != "" {
			t.Errorf("%s leaked to the next hop: %q", h, v)
		}
	}
}

func TestTimeout(t *testing.T) {
	release := make(chan struct{})
	s := serve(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	_, err := newClient(t, s.URL, 50*time.Millisecond).ListProducts(withRelay(t, nil))
	if !errors.Is(err, domain.ErrUpstreamTimeout) {
		t.Fatalf("error = %v, want ErrUpstreamTimeout", err)
	}
}

func TestCallerDeadlineNestsInsideHopTimeout(t *testing.T) {
	s := serve(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	ctx, cancel := context.WithTimeout(withRelay(t, nil), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := newClient(t, s.URL, time.Minute).ListProducts(ctx)
	if !errors.Is(err, domain.ErrUpstreamTimeout) {
		t.Fatalf("error = %v, want ErrUpstreamTimeout", err)
	}
	if time.Since(start) > 30*time.Second {
		t.Fatal("the caller's shorter deadline was not honoured")
	}
}

func TestClientGoneCancelsTheCall(t *testing.T) {
	reached := make(chan struct{})
	cancelled := make(chan struct{})
	s := serve(t, func(w http.ResponseWriter, r *http.Request) {
		close(reached)
		<-r.Context().Done()
		close(cancelled)
	})
	ctx, cancel := context.WithCancel(withRelay(t, nil))
	go func() { <-reached; cancel() }()
	_, err := newClient(t, s.URL, time.Minute).ListProducts(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error = %v, want context.Canceled", err)
	}
	select {
	case <-cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("the upstream request was not cancelled")
	}
}

func TestConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, err = newClient(t, "http://"+addr, 5*time.Second).ListProducts(withRelay(t, nil))
	if !errors.Is(err, domain.ErrUpstreamUnavailable) {
		t.Fatalf("error = %v, want ErrUpstreamUnavailable", err)
	}
}

func TestRefusesToCallWithoutAToken(t *testing.T) {
	s := serve(t, func(w http.ResponseWriter, r *http.Request) { t.Error("upstream called without a token") })
	_, err := newClient(t, s.URL, time.Second).ListProducts(context.Background())
	if !errors.Is(err, domain.ErrTokenMissing) {
		t.Fatalf("error = %v", err)
	}
}

func TestDoesNotFollowRedirects(t *testing.T) {
	other := serve(t, func(w http.ResponseWriter, r *http.Request) { t.Error("token followed a redirect") })
	s := serve(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/products", http.StatusFound)
	})
	if _, err := newClient(t, s.URL, time.Second).ListProducts(withRelay(t, nil)); !errors.Is(err, domain.ErrUpstreamBadResponse) {
		t.Fatalf("error = %v", err)
	}
}

func TestReusesConnections(t *testing.T) {
	var conns atomic.Int64
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`[]`))
	}))
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	s.Start()
	t.Cleanup(s.Close)
	c := newClient(t, s.URL, 5*time.Second)
	ctx := withRelay(t, nil)
	for range 50 {
		if _, err := c.ListProducts(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("50 sequential calls opened %d connections, want 1 (keep-alive)", n)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for _, cfg := range []httpout.Config{
		{URL: "ftp://x", Timeout: time.Second},
		{URL: "http://", Timeout: time.Second},
		{URL: "http://x", Timeout: 0},
	} {
		if _, err := httpout.New(cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
}

func marshal(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
