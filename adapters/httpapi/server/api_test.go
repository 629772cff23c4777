package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trustchain/trustchain/adapters/httpapi/server"
	"github.com/trustchain/trustchain/adapters/httpapi/wire"
	"github.com/trustchain/trustchain/adapters/memory"
	"github.com/trustchain/trustchain/domain"
	"github.com/trustchain/trustchain/internal/testkit/logbuf"
)

func TestResponses(t *testing.T) {
	catalogue := memory.New(domain.SampleCatalogue()...)
	tests := []struct {
		name       string
		opts       []apiOption
		method     string
		path       string
		auth       string
		wantStatus int
		wantBody   string // exact, or an error code for an error body
		wantChall  string
		wantLink   string
	}{
		{name: "B or C answer the bare array", path: "/products", auth: "Bearer " + goodToken, wantStatus: 200,
			wantBody: `[{"id":1,"name":"Laptop","price":1000}]`},
		{name: "A wraps the envelope", opts: []apiOption{func(c *server.APIConfig) { c.Envelope = true }}, path: "/products", auth: "Bearer " + goodToken, wantStatus: 200,
			wantBody: `{"products":[{"id":1,"name":"Laptop","price":1000}],"serviceA_metadata":"request processed at 2025-02-12T08:00:00Z"}`},
		{name: "empty catalogue is []", opts: []apiOption{withSource(memory.New())}, path: "/products", auth: "Bearer " + goodToken, wantStatus: 200,
			wantBody: `[]`},
		{name: "a page with more to come links to the next", opts: []apiOption{withSource(catalogue)}, path: "/products?limit=2", auth: "Bearer " + goodToken, wantStatus: 200,
			wantBody: `[{"id":1,"name":"Laptop","price":1000},{"id":2,"name":"Mechanical Keyboard","price":89.99}]`,
			wantLink: `</products?after=2&limit=2>; rel="next"`},
		{name: "the last page has no link", opts: []apiOption{withSource(catalogue)}, path: "/products?after=2&limit=2", auth: "Bearer " + goodToken, wantStatus: 200,
			wantBody: `[{"id":3,"name":"USB-C Cable","price":19.99}]`},
		{name: "A's page keeps the envelope and the link", opts: []apiOption{withSource(catalogue), func(c *server.APIConfig) { c.Envelope = true }}, path: "/products?limit=1", auth: "Bearer " + goodToken, wantStatus: 200,
			wantBody: `{"products":[{"id":1,"name":"Laptop","price":1000}],"serviceA_metadata":"request processed at 2025-02-12T08:00:00Z"}`,
			wantLink: `</products?after=1&limit=1>; rel="next"`},
		{name: "one product", opts: []apiOption{withSource(catalogue)}, path: "/products/3", auth: "Bearer " + goodToken, wantStatus: 200,
			wantBody: `{"id":3,"name":"USB-C Cable","price":19.99}`},
		{name: "A wraps one product", opts: []apiOption{withSource(catalogue), func(c *server.APIConfig) { c.Envelope = true }}, path: "/products/2", auth: "Bearer " + goodToken, wantStatus: 200,
			wantBody: `{"product":{"id":2,"name":"Mechanical Keyboard","price":89.99},"serviceA_metadata":"request processed at 2025-02-12T08:00:00Z"}`},
		{name: "unknown product", opts: []apiOption{withSource(catalogue)}, path: "/products/4", auth: "Bearer " + goodToken, wantStatus: 404, wantBody: "not_found"},
		{name: "bearer scheme is case-insensitive", path: "/products", auth: "bearer " + goodToken, wantStatus: 200,
			wantBody: `[{"id":1,"name":"Laptop","price":1000}]`},
		{name: "missing token", path: "/products", wantStatus: 401, wantChall: `Bearer`, wantBody: "unauthorized"},
		{name: "missing token on one product", path: "/products/1", wantStatus: 401, wantChall: `Bearer`, wantBody: "unauthorized"},
		{name: "other scheme counts as missing", path: "/products", auth: "Basic dXNlcjpwYXNz", wantStatus: 401, wantChall: `Bearer`, wantBody: "unauthorized"},
		{name: "empty bearer", path: "/products", auth: "Bearer ", wantStatus: 401, wantChall: `Bearer error="invalid_token"`, wantBody: "invalid_token"},
		{name: "bad token", path: "/products", auth: "Bearer forged.token.x", wantStatus: 401, wantChall: `Bearer error="invalid_token"`, wantBody: "invalid_token"},
		{name: "missing scope", path: "/products", auth: "Bearer " + noScopeToken, wantStatus: 403, wantChall: `Bearer error="insufficient_scope", scope="read:products"`, wantBody: "insufficient_scope"},
		{name: "no scope required", opts: []apiOption{func(c *server.APIConfig) { c.RequiredScope = "" }}, path: "/products", auth: "Bearer " + noScopeToken, wantStatus: 200,
			wantBody: `[{"id":1,"name":"Laptop","price":1000}]`},
		{name: "method not allowed", method: http.MethodPost, path: "/products", auth: "Bearer " + goodToken, wantStatus: 405, wantBody: "method_not_allowed"},
		{name: "method not allowed on a product", method: http.MethodDelete, path: "/products/1", auth: "Bearer " + goodToken, wantStatus: 405, wantBody: "method_not_allowed"},
		{name: "unknown path", path: "/admin", wantStatus: 404, wantBody: "not_found"},
		{name: "empty product id", path: "/products/", wantStatus: 404, wantBody: "not_found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = http.MethodGet
			}
			w := do(newAPI(t, io.Discard, tt.opts...), method, tt.path, tt.auth)
			if w.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", w.Code, tt.wantStatus, w.Body)
			}
			body, ok := strings.CutSuffix(w.Body.String(), "\n")
			if !ok {
				t.Errorf("body %q does not end with a newline", w.Body.String())
			}
			switch {
			case tt.wantStatus >= 400:
				e := errorBody(t, body)
				if e.Error != tt.wantBody || e.Message == "" || e.RequestID != w.Header().Get("X-Request-Id") || e.RequestID == "" {
					t.Fatalf("error body %s: want error %q, a message and the request id %q", body, tt.wantBody, w.Header().Get("X-Request-Id"))
				}
			case body != tt.wantBody:
				t.Fatalf("body = %s\nwant   %s", body, tt.wantBody)
			}
			if got := w.Header().Get("WWW-Authenticate"); got != tt.wantChall {
				t.Errorf("WWW-Authenticate = %q, want %q", got, tt.wantChall)
			}
			if got := w.Header().Get("Link"); got != tt.wantLink {
				t.Errorf("Link = %q, want %q", got, tt.wantLink)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			if tt.wantStatus == 405 && w.Header().Get("Allow") != "GET, HEAD" {
				t.Errorf("Allow = %q", w.Header().Get("Allow"))
			}
		})
	}
}

type errorJSON struct {
	Error     string `json:"error"`
	Message   string `json:"message"`
	RequestID string `json:"request_id"`
}

func errorBody(tb testing.TB, body string) errorJSON {
	tb.Helper()
	var e errorJSON
	dec := json.NewDecoder(strings.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		tb.Fatalf("error body %q is not {error, message, request_id}: %v", body, err)
	}
	return e
}

// TestBadPagingIsRefusedAtTheFirstHop: every malformed paging input is a
// 400 invalid_request, never a 5xx, and never reaches the source.
func TestBadPagingIsRefusedAtTheFirstHop(t *testing.T) {
	called := false
	src := sourceFuncs{list: func(context.Context, domain.PageRequest) (domain.Page, error) {
		called = true
		return domain.Page{}, nil
	}, get: func(context.Context, int64) (domain.Product, error) {
		called = true
		return domain.Product{}, nil
	}}
	h := newAPI(t, io.Discard, withSource(src))
	for _, path := range []string{
		"/products?limit=0",
		"/products?limit=1001",
		"/products?limit=-1",
		"/products?limit=abc",
		"/products?limit=1.5",
		"/products?limit=%2B5",
		"/products?limit=1e3",
		"/products?limit=",
		"/products?after=abc",
		"/products?after=-1",
		"/products?after=99999999999999999999",
		"/products?limit=5&limit=6",
		"/products?after=1&after=1",
		"/products?limit=%zz",
		"/products/abc",
		"/products/-1",
		"/products/0",
		"/products/1.0",
		"/products/99999999999999999999",
	} {
		t.Run(path, func(t *testing.T) {
			called = false
			w := do(h, http.MethodGet, path, "Bearer "+goodToken)
			if w.Code != 400 || errorBody(t, w.Body.String()).Error != "invalid_request" {
				t.Fatalf("%d %s, want 400 invalid_request", w.Code, w.Body)
			}
			if strings.Contains(errorBody(t, w.Body.String()).Message, "malformed") && !strings.Contains(path, "%zz") {
				t.Errorf("message %q does not say what is wrong", errorBody(t, w.Body.String()).Message)
			}
			if called {
				t.Error("the source was asked")
			}
		})
	}
	t.Run("unknown parameters are ignored", func(t *testing.T) {
		if w := do(h, http.MethodGet, "/products?limit=2&utm_source=x", "Bearer "+goodToken); w.Code != 200 {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
	})
}

func TestSourceErrorsMapToStatuses(t *testing.T) {
	tests := []struct {
		err        error
		wantStatus int
		wantRetry  string
	}{
		{fmt.Errorf("call upstream: %w", domain.ErrUpstreamUnavailable), 502, ""},
		{fmt.Errorf("call upstream: %w", domain.ErrUpstreamBadResponse), 502, ""},
		{fmt.Errorf("call upstream: %w", domain.ErrUpstreamTimeout), 504, ""},
		{fmt.Errorf("list: %w", domain.ErrSourceTimeout), 504, ""},
		{fmt.Errorf("list: %w", domain.ErrSourceUnavailable), 503, "1"},
		{fmt.Errorf("verify: %w", domain.ErrVerifierNotReady), 503, "1"},
		{fmt.Errorf("get: %w", domain.ErrNotFound), 404, ""},
		{fmt.Errorf("call upstream: %w", domain.ErrInvalidRequest), 400, ""},
		{fmt.Errorf("a bug"), 500, ""},
		{fmt.Errorf("call upstream: %w", &wire.UpstreamRejection{Status: 401, Challenge: `Bearer error="invalid_token"`, Code: "invalid_token", Message: "from C"}), 401, ""},
	}
	for _, tt := range tests {
		t.Run(tt.err.Error(), func(t *testing.T) {
			w := do(newAPI(t, io.Discard, withSource(failing(tt.err))), http.MethodGet, "/products", "Bearer "+goodToken)
			if w.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d", w.Code, tt.wantStatus)
			}
			if got := w.Header().Get("Retry-After"); got != tt.wantRetry {
				t.Errorf("Retry-After = %q, want %q", got, tt.wantRetry)
			}
		})
	}
	t.Run("a refusal from the next hop goes back as it came", func(t *testing.T) {
		rejection := &wire.UpstreamRejection{Status: 403, Challenge: `Bearer error="insufficient_scope", scope="admin"`, Code: "insufficient_scope", Message: "from B"}
		w := do(newAPI(t, io.Discard, withSource(failing(fmt.Errorf("x: %w", rejection)))), http.MethodGet, "/products", "Bearer "+goodToken)
		e := errorBody(t, w.Body.String())
		if w.Code != 403 || w.Header().Get("WWW-Authenticate") != rejection.Challenge || e.Error != "insufficient_scope" || e.Message != "from B" {
			t.Fatalf("got %d %q %s", w.Code, w.Header().Get("WWW-Authenticate"), w.Body)
		}
	})
}

func TestVerifiedCredentialsReachTheSource(t *testing.T) {
	var got domain.Credentials
	src := sourceFuncs{list: func(ctx context.Context, req domain.PageRequest) (domain.Page, error) {
		got, _ = domain.CredentialsFrom(ctx)
		return seedStore.ListProducts(ctx, req)
	}}
	r, _ := http.NewRequest(http.MethodGet, "/products", nil)
	r.Header.Set("Authorization", "Bearer "+goodToken)
	r.Header.Set("X-Request-Id", "req-42")
	w := recorder()
	newAPI(t, io.Discard, withSource(src)).ServeHTTP(w, r)
	if got.Token() != goodToken || got.RequestID() != "req-42" {
		t.Fatalf("credentials at the source = %v, token %t", got, got.Token() == goodToken)
	}
}

func TestSourceNotCalledWhenRefused(t *testing.T) {
	src := failing(nil)
	src.list = func(context.Context, domain.PageRequest) (domain.Page, error) {
		t.Error("the source was called for a refused request")
		return domain.Page{}, nil
	}
	peerRefused := peerFunc(func(*http.Request) (string, error) {
		return "spiffe://cluster.local/ns/default/sa/service-b", fmt.Errorf("%w: wrong workload", domain.ErrPeerForbidden)
	})
	h := newAPI(t, io.Discard, withSource(src))
	for _, auth := range []string{"", "Bearer bad", "Bearer " + noScopeToken} {
		do(h, http.MethodGet, "/products", auth)
	}
	refused := 0
	withPeer := newAPI(t, io.Discard, withSource(src), func(c *server.APIConfig) {
		c.Peer = peerRefused
		c.OnPeerRefused = func() { refused++ }
	})
	if w := do(withPeer, http.MethodGet, "/products", "Bearer "+goodToken); w.Code != 403 || w.Header().Get("WWW-Authenticate") != "" {
		t.Fatalf("wrong workload with a valid token: %d %q", w.Code, w.Header().Get("WWW-Authenticate"))
	}
	if refused != 1 {
		t.Fatalf("peer refusals reported: %d", refused)
	}
}

func TestPeerAndTokenLayersAreIndependent(t *testing.T) {
	allowed := peerFunc(func(*http.Request) (string, error) { return "spiffe://cluster.local/ns/default/sa/service-a", nil })
	h := newAPI(t, io.Discard, func(c *server.APIConfig) { c.Peer = allowed })
	if w := do(h, http.MethodGet, "/products", "Bearer bad"); w.Code != 401 {
		t.Fatalf("right workload, bad token: %d, want 401", w.Code)
	}
	if w := do(h, http.MethodGet, "/products", "Bearer "+goodToken); w.Code != 200 {
		t.Fatalf("right workload, good token: %d, want 200", w.Code)
	}
}

// logLines decodes the JSON access log.
func logLines(tb testing.TB, out string) []map[string]any {
	tb.Helper()
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			tb.Fatalf("log line %q is not JSON: %v", l, err)
		}
		lines = append(lines, m)
	}
	return lines
}

func TestLogsReasonNeverToken(t *testing.T) {
	var logs logbuf.Buffer
	h := newAPI(t, &logs)
	do(h, http.MethodGet, "/products", "Bearer forged.token.x")
	do(h, http.MethodGet, "/products", "Bearer "+goodToken)
	out := logs.String()
	if strings.Contains(out, "forged.token.x") || strings.Contains(out, goodToken) {
		t.Fatalf("a token reached the log:\n%s", out)
	}
	lines := logLines(t, out)
	if len(lines) != 2 {
		t.Fatalf("want one line per request, got %d:\n%s", len(lines), out)
	}
	rejected, accepted := lines[0], lines[1]
	if e, _ := rejected["error"].(map[string]any); e["reason"] != domain.ReasonBadSignature || rejected["status"] != float64(401) {
		t.Errorf("rejection line lacks its reason: %v", rejected)
	}
	if accepted["sub"] != "auth0|user123" || accepted["request_id"] == "" || accepted["path"] != "/products" || accepted["route"] != "/products" {
		t.Errorf("access line = %v", accepted)
	}
}

// TestEveryRefusalLogsOneShape: whatever refused a request, the access log's
// error is an object with a reason and a detail, so a typed log store can
// query error.reason across all of them.
func TestEveryRefusalLogsOneShape(t *testing.T) {
	rejection := &wire.UpstreamRejection{Status: 401, Challenge: `Bearer error="invalid_token"`, Code: "invalid_token", Message: "x"}
	cases := []struct {
		name       string
		opts       []apiOption
		path, auth string
		wantReason string
	}{
		{"missing token", nil, "/products", "", domain.ReasonMissing},
		{"bad token", nil, "/products", "Bearer x", domain.ReasonBadSignature},
		{"insufficient scope", nil, "/products", "Bearer " + noScopeToken, domain.ReasonInsufficientScope},
		{"verifier not ready", []apiOption{func(c *server.APIConfig) {
			c.Verifier = failingVerifier{fmt.Errorf("oidc: %w", domain.ErrVerifierNotReady)}
		}}, "/products", "Bearer x", domain.ReasonNotReady},
		{"peer refused", []apiOption{func(c *server.APIConfig) {
			c.Peer = peerFunc(func(*http.Request) (string, error) { return "spiffe://x/y", domain.ErrPeerForbidden })
		}}, "/products", "Bearer " + goodToken, "forbidden"},
		{"bad paging", nil, "/products?limit=0", "Bearer " + goodToken, "invalid_request"},
		{"not found", []apiOption{withSource(failing(domain.ErrNotFound))}, "/products/9", "Bearer " + goodToken, "not_found"},
		{"store down", []apiOption{withSource(failing(domain.ErrSourceUnavailable))}, "/products", "Bearer " + goodToken, "unavailable"},
		{"store too slow", []apiOption{withSource(failing(domain.ErrSourceTimeout))}, "/products", "Bearer " + goodToken, "timeout"},
		{"next hop too slow", []apiOption{withSource(failing(domain.ErrUpstreamTimeout))}, "/products", "Bearer " + goodToken, "upstream_timeout"},
		{"next hop broken", []apiOption{withSource(failing(domain.ErrUpstreamBadResponse))}, "/products", "Bearer " + goodToken, "bad_gateway"},
		{"next hop refused", []apiOption{withSource(failing(rejection))}, "/products", "Bearer " + goodToken, "upstream_invalid_token"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var logs logbuf.Buffer
			do(newAPI(t, &logs, tc.opts...), http.MethodGet, tc.path, tc.auth)
			lines := logLines(t, logs.String())
			if len(lines) != 1 {
				t.Fatalf("%d log lines", len(lines))
			}
			e, ok := lines[0]["error"].(map[string]any)
			if !ok || e["reason"] != tc.wantReason || e["detail"] == "" {
				t.Fatalf("error = %#v, want an object with reason %q and a detail", lines[0]["error"], tc.wantReason)
			}
		})
	}
}

type failingVerifier struct{ err error }

func (f failingVerifier) Verify(context.Context, string) (domain.Principal, error) {
	return domain.Principal{}, f.err
}

// TestEveryRequestIsObservedOnce covers answers no route gives: 404s, 405s
// and the mux's own path-cleaning redirects. Each gets one log line and one
// observation.
func TestEveryRequestIsObservedOnce(t *testing.T) {
	var logs logbuf.Buffer
	var mu sync.Mutex
	var seen []server.Outcome
	h := newAPI(t, &logs, func(c *server.APIConfig) {
		c.Observe = func(_ context.Context, o server.Outcome) {
			mu.Lock()
			seen = append(seen, o)
			mu.Unlock()
		}
	})
	srv := startServer(t, h, server.DefaultLimits(time.Second))
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tc := range []struct {
		path       string
		wantStatus int
		wantRoute  string
	}{
		{"/products", 401, server.RouteProducts},
		{"/products/7", 401, server.RouteProduct},
		{"//products", http.StatusTemporaryRedirect, server.RouteOther},
		// The mux names the route the cleaned path would take.
		{"/x/../products", http.StatusTemporaryRedirect, server.RouteProducts},
		{"/nope", 404, server.RouteOther},
	} {
		mu.Lock()
		seen = nil
		mu.Unlock()
		logs.Reset()
		req, _ := http.NewRequest(http.MethodGet, "http://"+srv.Addr(), nil)
		req.URL.Opaque = tc.path // sent as written, not cleaned by the client
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.wantStatus {
			t.Errorf("%s: status %d, want %d", tc.path, resp.StatusCode, tc.wantStatus)
		}
		mu.Lock()
		if len(seen) != 1 || seen[0].Route != tc.wantRoute || seen[0].Status != tc.wantStatus {
			t.Errorf("%s: observed %+v, want one %s %d", tc.path, seen, tc.wantRoute, tc.wantStatus)
		}
		mu.Unlock()
		if lines := logLines(t, logs.String()); len(lines) != 1 || lines[0]["status"] != float64(tc.wantStatus) {
			t.Errorf("%s: log lines %v", tc.path, lines)
		}
		if resp.Header.Get("X-Request-Id") == "" {
			t.Errorf("%s: no X-Request-Id on the answer", tc.path)
		}
	}
}

func TestRequestIDs(t *testing.T) {
	h := newAPI(t, io.Discard)
	tests := []struct {
		name, sent string
		kept       bool
	}{
		{"a UUID is kept", "0b8f2c8e-7a8e-4d6a-9f0e-3f2b1c2d4e5f", true},
		{"a ULID is kept", "01ARZ3NDEKTSV4RRFFQ69G5FAV", true},
		{"128 characters are kept", strings.Repeat("a", 128), true},
		{"129 characters are replaced", strings.Repeat("a", 129), false},
		{"spaces are replaced", "a b", false},
		{"quotes are replaced", `a"b`, false},
		{"non-ASCII is replaced", "é", false},
		{"none gets one", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := http.NewRequest(http.MethodGet, "/products", nil)
			if tt.sent != "" {
				r.Header.Set("X-Request-Id", tt.sent)
			}
			w := recorder()
			h.ServeHTTP(w, r)
			got := w.Header().Get("X-Request-Id")
			if tt.kept != (got == tt.sent) || got == "" || len(got) > 128 {
				t.Fatalf("sent %q, answer carries %q; kept = %t, want %t", tt.sent, got, got == tt.sent, tt.kept)
			}
			if e := errorBody(t, w.Body.String()); e.RequestID != got {
				t.Fatalf("error body names %q, the header %q", e.RequestID, got)
			}
		})
	}
}

func TestCallerCannotGrowTheLog(t *testing.T) {
	var logs logbuf.Buffer
	h := newAPI(t, &logs)
	do(h, http.MethodGet, "/"+strings.Repeat("x", 8000), "")
	if n := len(logs.String()); n > 2000 {
		t.Fatalf("one request with a long path wrote %d bytes of log", n)
	}
}

func TestHeadAnswersLikeGetWithoutABody(t *testing.T) {
	srv := startServer(t, newAPI(t, io.Discard), server.DefaultLimits(time.Second))
	for _, path := range []string{"/products", "/products/1"} {
		lengths := map[string]string{}
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			req, _ := http.NewRequest(method, "http://"+srv.Addr()+path, nil)
			req.Header.Set("Authorization", "Bearer "+goodToken)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || (method == http.MethodHead && len(body) != 0) {
				t.Fatalf("%s %s = %d with %d bytes", method, path, resp.StatusCode, len(body))
			}
			lengths[method] = resp.Header.Get("Content-Length")
		}
		if lengths[http.MethodGet] == "" || lengths[http.MethodGet] != lengths[http.MethodHead] {
			t.Errorf("%s: Content-Length GET %q, HEAD %q", path, lengths[http.MethodGet], lengths[http.MethodHead])
		}
	}
}
