package client_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trustchain/trustchain/adapters/httpapi/client"
	"github.com/trustchain/trustchain/adapters/httpapi/server"
	"github.com/trustchain/trustchain/adapters/httpapi/wire"
	"github.com/trustchain/trustchain/adapters/memory"
	"github.com/trustchain/trustchain/domain"
	"github.com/trustchain/trustchain/internal/testkit/storetest"
	"github.com/trustchain/trustchain/ports"
)

const token = "header.payload.signature"

// withCreds is a context carrying what the inbound side hands on.
func withCreds() context.Context {
	return domain.WithCredentials(context.Background(), domain.NewCredentials(token, "req-1"))
}

func newClient(tb testing.TB, url string, timeout time.Duration, edit ...func(*client.Config)) *client.Client {
	tb.Helper()
	cfg := client.Config{URL: url, Timeout: timeout}
	for _, e := range edit {
		e(&cfg)
	}
	c, err := client.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.CloseIdleConnections)
	return c
}

func serve(tb testing.TB, h http.HandlerFunc) *httptest.Server {
	tb.Helper()
	s := httptest.NewServer(h)
	tb.Cleanup(s.Close)
	return s
}

// answer serves one fixed answer as JSON unless contentType says otherwise.
func answer(status int, body string, header ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		for i := 0; i+1 < len(header); i += 2 {
			w.Header()[header[i]] = append(w.Header()[header[i]], header[i+1])
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}
}

func page(tb testing.TB, after int64, limit int) domain.PageRequest {
	tb.Helper()
	req, err := domain.NewPageRequest(after, limit)
	if err != nil {
		tb.Fatal(err)
	}
	return req
}

// TestClientContract runs the ProductSource contract against the client,
// with a real API (backed by the in-memory store) behind a real server: the
// client must be as correct a source as the stores it stands in for.
func TestClientContract(t *testing.T) {
	storetest.RunProductSourceContract(t, func(tb testing.TB, products []domain.Product) (ports.ProductSource, context.Context) {
		api := newAPI(tb, io.Discard, withSource(memory.New(products...)), func(c *server.APIConfig) {
			c.Paging = server.Paging{DefaultLimit: 100, MaxLimit: domain.MaxPageLimit}
			c.Verifier = tokenTable{token: domain.NewPrincipal("auth0|contract", []string{"read:products"})}
		})
		srv := httptest.NewServer(api)
		tb.Cleanup(srv.Close)
		return newClient(tb, srv.URL, 5*time.Second), withCreds()
	})
}

func TestListAnswers(t *testing.T) {
	two := `[{"id":1,"name":"Laptop","price":1000},{"id":2,"name":"Cable","price":19.99}]`
	tests := []struct {
		name    string
		handler http.HandlerFunc
		limit   int
		wantErr error
		want    string
		more    bool
	}{
		{name: "products", handler: answer(200, two), limit: 10, want: `1 "Laptop" 1000; 2 "Cable" 19.99`},
		{name: "empty", handler: answer(200, `[]`), limit: 10, want: ``},
		{name: "whitespace around", handler: answer(200, " \n[]\n"), limit: 10, want: ``},
		{name: "charset utf-8", handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			_, _ = w.Write([]byte(`[]`))
		}, limit: 10, want: ``},
		{name: "a full page with its next link", handler: answer(200, two, "Link", `</products?after=2&limit=2>; rel="next"`), limit: 2,
			want: `1 "Laptop" 1000; 2 "Cable" 19.99`, more: true},
		{name: "null is not a list", handler: answer(200, `null`), limit: 10, wantErr: domain.ErrUpstreamBadResponse},
		{name: "object", handler: answer(200, `{"products":[]}`), limit: 10, wantErr: domain.ErrUpstreamBadResponse},
		{name: "truncated", handler: answer(200, `[{"id":1,"name":"Laptop"`), limit: 10, wantErr: domain.ErrUpstreamBadResponse},
		{name: "trailing data", handler: answer(200, `[] []`), limit: 10, wantErr: domain.ErrUpstreamBadResponse},
		{name: "trailing brackets", handler: answer(200, `[{"id":1,"name":"L","price":1}]]]]}}}`), limit: 10, wantErr: domain.ErrUpstreamBadResponse},
		{name: "duplicate ids", handler: answer(200, `[{"id":1,"name":"a","price":1},{"id":1,"name":"b","price":1}]`), limit: 10, wantErr: domain.ErrUpstreamBadResponse},
		{name: "descending ids", handler: answer(200, `[{"id":2,"name":"a","price":1},{"id":1,"name":"b","price":1}]`), limit: 10, wantErr: domain.ErrUpstreamBadResponse},
		{name: "more than asked for", handler: answer(200, two), limit: 1, wantErr: domain.ErrUpstreamBadResponse},
		{name: "a field twice", handler: answer(200, `[{"id":1,"id":2,"name":"a","price":1}]`), limit: 10, wantErr: domain.ErrUpstreamBadResponse},
		{name: "an unknown field", handler: answer(200, `[{"id":1,"name":"a","price":1,"admin":true}]`), limit: 10, wantErr: domain.ErrUpstreamBadResponse},
		{name: "invalid product", handler: answer(200, `[{"id":-1,"name":"Laptop","price":1}]`), limit: 10, wantErr: domain.ErrUpstreamBadResponse},
		{name: "price as string", handler: answer(200, `[{"id":1,"name":"Laptop","price":"1000"}]`), limit: 10, wantErr: domain.ErrUpstreamBadResponse},
		{name: "price with float error", handler: answer(200, `[{"id":1,"name":"Laptop","price":0.1000000001}]`), limit: 10, wantErr: domain.ErrUpstreamBadResponse},
		{name: "id as float", handler: answer(200, `[{"id":1.0,"name":"Laptop","price":1}]`), limit: 10, wantErr: domain.ErrUpstreamBadResponse},
		{name: "invalid UTF-8", handler: answer(200, "[{\"id\":1,\"name\":\"\xff\",\"price\":1}]"), limit: 10, wantErr: domain.ErrUpstreamBadResponse},
		{name: "html", handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			_, _ = w.Write([]byte(`[]`))
		}, limit: 10, wantErr: domain.ErrUpstreamBadResponse},
		{name: "no content type", handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header()["Content-Type"] = nil
			_, _ = w.Write([]byte(`[]`))
		}, limit: 10, wantErr: domain.ErrUpstreamBadResponse},
		{name: "a next link on a short page", handler: answer(200, two, "Link", `</products?after=2&limit=5>; rel="next"`), limit: 5, wantErr: domain.ErrUpstreamBadResponse},
		{name: "a next link naming another page", handler: answer(200, two, "Link", `</products?after=7&limit=2>; rel="next"`), limit: 2, wantErr: domain.ErrUpstreamBadResponse},
		{name: "a next link elsewhere", handler: answer(200, two, "Link", `<https://evil.example/products?after=2&limit=2>; rel="next"`), limit: 2, wantErr: domain.ErrUpstreamBadResponse},
		{name: "two links", handler: answer(200, two, "Link", `</products?after=2&limit=2>; rel="next"`, "Link", `</products?after=2&limit=2>; rel="next"`), limit: 2, wantErr: domain.ErrUpstreamBadResponse},
		{name: "server error", handler: answer(500, `{}`), limit: 10, wantErr: domain.ErrUpstreamUnavailable},
		{name: "bad gateway below", handler: answer(502, `{}`), limit: 10, wantErr: domain.ErrUpstreamUnavailable},
		{name: "unavailable below stays unavailable", handler: answer(503, `{}`), limit: 10, wantErr: domain.ErrSourceUnavailable},
		{name: "a timeout below stays a timeout", handler: answer(504, `{}`), limit: 10, wantErr: domain.ErrUpstreamTimeout},
		{name: "not found stays not found", handler: answer(404, `{}`), limit: 10, wantErr: domain.ErrNotFound},
		{name: "a bad request stays a bad request", handler: answer(400, `{}`), limit: 10, wantErr: domain.ErrInvalidRequest},
		{name: "a status the protocol never uses", handler: answer(418, `{}`), limit: 10, wantErr: domain.ErrUpstreamBadResponse},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := serve(t, tt.handler)
			got, err := newClient(t, s.URL, 5*time.Second).ListProducts(withCreds(), page(t, 0, tt.limit))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("error = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if text := storetest.Text(got.Products()); text != tt.want {
				t.Fatalf("products = %s, want %s", text, tt.want)
			}
			if _, more := got.Next(); more != tt.more {
				t.Fatalf("more = %t, want %t", more, tt.more)
			}
		})
	}
}

func TestGetAnswers(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
		wantErr error
	}{
		{name: "the product", handler: answer(200, `{"id":7,"name":"Mouse","price":19.99}`)},
		{name: "another product", handler: answer(200, `{"id":8,"name":"Mouse","price":19.99}`), wantErr: domain.ErrUpstreamBadResponse},
		{name: "a list", handler: answer(200, `[{"id":7,"name":"Mouse","price":19.99}]`), wantErr: domain.ErrUpstreamBadResponse},
		{name: "trailing data", handler: answer(200, `{"id":7,"name":"Mouse","price":19.99}{}`), wantErr: domain.ErrUpstreamBadResponse},
		{name: "not found", handler: answer(404, `{"error":"not_found","message":"no such product"}`), wantErr: domain.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := serve(t, tt.handler)
			p, err := newClient(t, s.URL, 5*time.Second).GetProduct(withCreds(), 7)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("error = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil || storetest.Text([]domain.Product{p}) != `7 "Mouse" 19.99` {
				t.Fatalf("GetProduct = %v, %v", p, err)
			}
		})
	}
}

// TestRefusalsFromTheNextHop: a 401 or 403 keeps its status, its code when
// the table has it for that status, and its challenge's error, scope and
// algs. The message is always this hop's own; anything malformed is
// replaced by this hop's own answer for the same status.
func TestRefusalsFromTheNextHop(t *testing.T) {
	json401 := `{"error":"invalid_token","message":"expired, says C","request_id":"r"}`
	const (
		ownInvalid   = "the access token is invalid"
		ownScope     = "the access token lacks the required scope"
		ownForbidden = "the calling workload is not allowed"
	)
	tests := []struct {
		name          string
		handler       http.HandlerFunc
		wantStatus    int
		wantChallenge string
		wantCode      string
		wantMessage   string
	}{
		{"a well-formed 401 is relayed with this hop's message", answer(401, json401, "Www-Authenticate", `Bearer error="invalid_token"`),
			401, `Bearer error="invalid_token"`, "invalid_token", ownInvalid},
		{"a well-formed 403 with scope is relayed", answer(403, `{"error":"insufficient_scope","message":"needs admin"}`, "Www-Authenticate", `Bearer error="insufficient_scope", scope="admin:products"`),
			403, `Bearer error="insufficient_scope", scope="admin:products"`, "insufficient_scope", ownScope},
		{"a forbidden workload has no challenge", answer(403, `{"error":"forbidden","message":"not you"}`),
			403, "", "forbidden", ownForbidden},
		{"the next hop's text is dropped from the challenge", answer(401, `{"error":"invalid_token","message":"log in at https://evil.example/"}`,
			"Www-Authenticate", `Bearer realm="x", error="invalid_token", error_description="log in again at evil.example", error_uri="https://evil.example/help"`),
			401, `Bearer error="invalid_token"`, "invalid_token", ownInvalid},
		{"a 2 KiB challenge is not", answer(401, json401, "Www-Authenticate", `Bearer error="`+strings.Repeat("x", 2<<10)+`"`),
			401, `Bearer error="invalid_token"`, "invalid_token", ownInvalid},
		{"a challenge with a stray quote is not", answer(401, json401, "Www-Authenticate", `Bearer error="a"b"`),
			401, `Bearer error="invalid_token"`, "invalid_token", ownInvalid},
		{"an unknown challenge error is not", answer(401, json401, "Www-Authenticate", `Bearer error="call_us"`),
			401, `Bearer error="invalid_token"`, "invalid_token", ownInvalid},
		{"another scheme is not", answer(401, json401, "Www-Authenticate", `Basic realm="x"`),
			401, `Bearer error="invalid_token"`, "invalid_token", ownInvalid},
		{"an HTML body is not", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.Header().Set("Www-Authenticate", `Bearer`)
			w.WriteHeader(401)
			_, _ = w.Write([]byte(`<html><script>alert(1)</script></html>`))
		}, 401, `Bearer error="invalid_token"`, "invalid_token", ownInvalid},
		{"JSON of another shape is not", answer(403, `{"error":"forbidden","message":"x","debug":"stack"}`),
			403, "", "forbidden", ownForbidden},
		{"an unknown code is not", answer(401, `{"error":"<b>pwned</b>","message":"x"}`, "Www-Authenticate", `Bearer`),
			401, `Bearer error="invalid_token"`, "invalid_token", ownInvalid},
		{"a code of another status is not", answer(401, `{"error":"insufficient_scope","message":"x"}`, "Www-Authenticate", `Bearer`),
			401, `Bearer error="invalid_token"`, "invalid_token", ownInvalid},
		{"a huge body is not", answer(401, `{"error":"invalid_token","message":"`+strings.Repeat("m", 5000)+`"}`, "Www-Authenticate", `Bearer error="invalid_token"`),
			401, `Bearer error="invalid_token"`, "invalid_token", ownInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := serve(t, tt.handler)
			_, err := newClient(t, s.URL, 5*time.Second).ListProducts(withCreds(), page(t, 0, 10))
			var rej *wire.UpstreamRejection
			if !errors.As(err, &rej) {
				t.Fatalf("error = %v, want an UpstreamRejection", err)
			}
			if rej.Status != tt.wantStatus || rej.Challenge != tt.wantChallenge || rej.Code != tt.wantCode || rej.Message != tt.wantMessage {
				t.Fatalf("rejection = %d %q %q %q\nwant        %d %q %q %q", rej.Status, truncateForLog(rej.Challenge), rej.Code, rej.Message,
					tt.wantStatus, tt.wantChallenge, tt.wantCode, tt.wantMessage)
			}
		})
	}
}

func truncateForLog(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

func TestResponseHeadersAreCapped(t *testing.T) {
	for name, h := range map[string]http.HandlerFunc{
		"padding on a 200":  answer(200, `[]`, "X-Padding", strings.Repeat("p", 128<<10)),
		"a 1 MiB challenge": answer(401, `{"error":"invalid_token","message":"x"}`, "Www-Authenticate", `Bearer error="`+strings.Repeat("x", 1<<20)+`"`),
	} {
		t.Run(name, func(t *testing.T) {
			s := serve(t, h)
			_, err := newClient(t, s.URL, 5*time.Second).ListProducts(withCreds(), page(t, 0, 10))
			if !errors.Is(err, domain.ErrUpstreamUnavailable) {
				t.Fatalf("error = %v: headers beyond 64 KiB must not be read", err)
			}
		})
	}
}

func TestRetryAfterPassesOn(t *testing.T) {
	for _, tc := range []struct{ sent, want string }{{"7", "7"}, {"99999", "3600"}, {"Wed, 21 Oct 2015 07:28:00 GMT", "1"}, {"", "1"}} {
		s := serve(t, answer(503, `{"error":"unavailable","message":"x"}`, "Retry-After", tc.sent))
		client := newClient(t, s.URL, 5*time.Second)
		w := do(newAPI(t, io.Discard, withSource(client)), http.MethodGet, "/products", "Bearer "+goodToken)
		if w.Code != 503 || w.Header().Get("Retry-After") != tc.want {
			t.Errorf("downstream Retry-After %q: got %d with %q, want 503 with %q", tc.sent, w.Code, w.Header().Get("Retry-After"), tc.want)
		}
	}
}

func TestForwardsOnlyTheTokenAndTheRequestID(t *testing.T) {
	var got http.Header
	s := serve(t, func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		answer(200, `[]`)(w, r)
	})
	client := newClient(t, s.URL, 5*time.Second, func(c *client.Config) {
		c.Propagate = func(_ context.Context, h http.Header) {
			h.Set("Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
		}
	})
	if _, err := client.ListProducts(withCreds(), page(t, 0, 10)); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"Authorization": "Bearer " + token,
		"X-Request-Id":  "req-1",
		"Accept":        "application/json",
		"Traceparent":   "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
	}
	for k, v := range want {
		if got.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, got.Get(k), v)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok && k != "User-Agent" {
			t.Errorf("%s reached the next hop: it is not on the allow-list", k)
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
	_, err := newClient(t, s.URL, 50*time.Millisecond).ListProducts(withCreds(), page(t, 0, 10))
	if !errors.Is(err, domain.ErrUpstreamTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error = %v, want ErrUpstreamTimeout", err)
	}
}

// TestAnswerAsTheBudgetRunsOutIsATimeout: the next hop saw this hop's call
// cut off at its budget and said so (499, client closed request), and that
// answer won the race with the transport's own timeout error. It is this
// hop's timeout, not a bad answer from the next.
func TestAnswerAsTheBudgetRunsOutIsATimeout(t *testing.T) {
	s := serve(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	lateAnswer := func(next http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			<-r.Context().Done()
			return &http.Response{StatusCode: 499, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
		})
	}
	c := newClient(t, s.URL, 50*time.Millisecond, func(cfg *client.Config) { cfg.WrapTransport = lateAnswer })
	_, err := c.ListProducts(withCreds(), page(t, 0, 10))
	if !errors.Is(err, domain.ErrUpstreamTimeout) {
		t.Fatalf("error = %v, want ErrUpstreamTimeout", err)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestCallerDeadlineNestsInsideHopTimeout(t *testing.T) {
	s := serve(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	ctx, cancel := context.WithTimeout(withCreds(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := newClient(t, s.URL, time.Minute).ListProducts(ctx, page(t, 0, 10))
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
	ctx, cancel := context.WithCancel(withCreds())
	go func() { <-reached; cancel() }()
	_, err := newClient(t, s.URL, time.Minute).ListProducts(ctx, page(t, 0, 10))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error = %v, want context.Canceled", err)
	}
	select {
	case <-cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("the upstream request was not cancelled")
	}
}

func closedAddr(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

func TestConnectionRefused(t *testing.T) {
	_, err := newClient(t, closedAddr(t), 5*time.Second).ListProducts(withCreds(), page(t, 0, 10))
	if !errors.Is(err, domain.ErrUpstreamUnavailable) {
		t.Fatalf("error = %v, want ErrUpstreamUnavailable", err)
	}
}

func TestRefusesToCallWithoutCredentials(t *testing.T) {
	s := serve(t, func(w http.ResponseWriter, r *http.Request) { t.Error("upstream called without a token") })
	if _, err := newClient(t, s.URL, time.Second).ListProducts(context.Background(), page(t, 0, 10)); err == nil {
		t.Fatal("a call without credentials was made")
	}
}

func TestDoesNotFollowRedirects(t *testing.T) {
	other := serve(t, func(w http.ResponseWriter, r *http.Request) { t.Error("token followed a redirect") })
	s := serve(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/products", http.StatusFound)
	})
	if _, err := newClient(t, s.URL, time.Second).ListProducts(withCreds(), page(t, 0, 10)); !errors.Is(err, domain.ErrUpstreamBadResponse) {
		t.Fatalf("error = %v", err)
	}
}

func TestReusesConnections(t *testing.T) {
	var conns atomic.Int64
	s := httptest.NewUnstartedServer(answer(200, `[]`))
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	s.Start()
	t.Cleanup(s.Close)
	c := newClient(t, s.URL, 5*time.Second)
	for range 50 {
		if _, err := c.ListProducts(withCreds(), page(t, 0, 10)); err != nil {
			t.Fatal(err)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("50 sequential calls opened %d connections, want 1 (keep-alive)", n)
	}
}

func TestNewClientRejectsBadConfig(t *testing.T) {
	for _, cfg := range []client.Config{
		{URL: "ftp://x", Timeout: time.Second},
		{URL: "http://", Timeout: time.Second},
		{URL: "http://user:pw@x", Timeout: time.Second},
		{URL: "http://x", Timeout: 0},
	} {
		if _, err := client.New(cfg); err == nil {
			t.Errorf("NewClient(%+v) accepted", cfg)
		}
	}
}

// TestObservedOutcomes is what the upstream metrics see: one observation
// per call, with the answer's status and the outcome kind.
func TestObservedOutcomes(t *testing.T) {
	slow := serve(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	tests := []struct {
		name       string
		url        string
		ctx        func() (context.Context, context.CancelFunc)
		wantStatus int
		wantKind   string
	}{
		{"ok", serve(t, answer(200, `[]`)).URL, nil, 200, wire.KindNone},
		{"not found is an answer", serve(t, answer(404, `{}`)).URL, nil, 404, wire.KindNone},
		{"503", serve(t, answer(503, `{}`)).URL, nil, 503, wire.KindUnavailable},
		{"504", serve(t, answer(504, `{}`)).URL, nil, 504, wire.KindTimeout},
		{"500", serve(t, answer(500, `{}`)).URL, nil, 500, wire.KindBadResponse},
		{"401", serve(t, answer(401, `{}`)).URL, nil, 401, wire.KindRejected},
		{"403", serve(t, answer(403, `{}`)).URL, nil, 403, wire.KindRejected},
		{"garbage", serve(t, answer(200, `nope`)).URL, nil, 200, wire.KindBadResponse},
		{"refused", closedAddr(t), nil, 0, wire.KindConnection},
		{"deadline", slow.URL, func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(withCreds(), 50*time.Millisecond)
		}, 0, wire.KindTimeout},
		{"canceled", slow.URL, func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(withCreds())
			time.AfterFunc(50*time.Millisecond, cancel)
			return ctx, cancel
		}, 0, wire.KindCanceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var seen []string
			client := newClient(t, tt.url, 5*time.Second, func(c *client.Config) {
				c.Observe = func(_ context.Context, status int, kind string, _ time.Duration) {
					mu.Lock()
					seen = append(seen, kind)
					mu.Unlock()
					if status != tt.wantStatus {
						t.Errorf("status = %d, want %d", status, tt.wantStatus)
					}
				}
			})
			ctx, cancel := withCreds(), context.CancelFunc(func() {})
			if tt.ctx != nil {
				ctx, cancel = tt.ctx()
			}
			defer cancel()
			_, _ = client.ListProducts(ctx, page(t, 0, 10))
			mu.Lock()
			defer mu.Unlock()
			if len(seen) != 1 || seen[0] != tt.wantKind {
				t.Fatalf("observed %v, want one %q", seen, tt.wantKind)
			}
		})
	}
}

// TestForwardsTheVerifiedTokenOnly: whatever form the caller's header had,
// the next hop gets "Bearer " and the token this hop verified, no more.
func TestForwardsTheVerifiedTokenOnly(t *testing.T) {
	for _, inbound := range []string{
		"Bearer " + goodToken,
		"bearer " + goodToken,
		"BEARER   " + goodToken + "  ",
	} {
		var got []string
		s := serve(t, func(w http.ResponseWriter, r *http.Request) {
			got = r.Header.Values("Authorization")
			answer(200, `[]`)(w, r)
		})
		h := newAPI(t, io.Discard, withSource(newClient(t, s.URL, 5*time.Second)))
		if w := do(h, http.MethodGet, "/products", inbound); w.Code != http.StatusOK {
			t.Fatalf("%q: status %d: %s", inbound, w.Code, w.Body)
		}
		if want := "Bearer " + goodToken; len(got) != 1 || got[0] != want {
			t.Errorf("%q reached the next hop as %q, want [%q]", inbound, got, want)
		}
	}
}

// TestRelayedRefusalCarriesNoTextOfTheNextHop runs a real hop (the API in
// front of this client, over loopback HTTP) whose next hop answers a 401
// full of its own text: the user gets the hop's own answer, with the
// request id the user sent.
func TestRelayedRefusalCarriesNoTextOfTheNextHop(t *testing.T) {
	next := serve(t, answer(401,
		`{"error":"invalid_token","message":"Session expired: sign in again at https://evil.example/login","request_id":"next-hop-id"}`,
		"Www-Authenticate", `Bearer realm="evil", error="invalid_token", error_description="Your account is locked: call +1 555 0100", error_uri="https://evil.example/help"`))
	hop := httptest.NewServer(newAPI(t, io.Discard, withSource(newClient(t, next.URL, 5*time.Second))))
	t.Cleanup(hop.Close)

	req, _ := http.NewRequest(http.MethodGet, hop.URL+"/products", nil)
	req.Header.Set("Authorization", "Bearer "+goodToken)
	req.Header.Set("X-Request-Id", "user-req-1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	dump, _ := httputil.DumpResponse(resp, true)
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != `Bearer error="invalid_token"` {
		t.Fatalf("answer:\n%s", dump)
	}
	_, body, _ := strings.Cut(string(dump), "\r\n\r\n")
	if want := `{"error":"invalid_token","message":"the access token is invalid","request_id":"user-req-1"}` + "\n"; body != want {
		t.Fatalf("body = %s, want %s", body, want)
	}
	for _, text := range []string{"evil", "555", "locked", "Session", "next-hop-id", "http"} {
		if strings.Contains(string(dump), text) {
			t.Errorf("the answer carries the next hop's %q:\n%s", text, dump)
		}
	}
}
