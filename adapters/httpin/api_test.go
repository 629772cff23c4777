package httpin_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/trustchain/trustchain/adapters/httpin"
	"github.com/trustchain/trustchain/adapters/memory"
	"github.com/trustchain/trustchain/adapters/relay"
	"github.com/trustchain/trustchain/domain"
	"github.com/trustchain/trustchain/internal/logbuf"
	"github.com/trustchain/trustchain/ports"
)

// tokenTable is a verifier adapter over a fixed set of tokens: a real
// implementation of the port, so the handler under test is exercised whole.
type tokenTable map[string]domain.Principal

func (tt tokenTable) Verify(_ context.Context, raw string) (domain.Principal, error) {
	if p, ok := tt[raw]; ok {
		return p, nil
	}
	return domain.Principal{}, &domain.TokenError{Reason: domain.ReasonBadSignature, Err: errors.New("no such token")}
}

const (
	goodToken    = "good.token.value"
	noScopeToken = "noscope.token.value"
)

var tokens = tokenTable{
	goodToken:    domain.NewPrincipal("auth0|user123", []string{"read:products"}),
	noScopeToken: domain.NewPrincipal("auth0|user456", []string{"openid"}),
}

// sourceFunc adapts a function to ports.ProductSource.
type sourceFunc func(ctx context.Context) ([]domain.Product, error)

func (f sourceFunc) ListProducts(ctx context.Context) ([]domain.Product, error) { return f(ctx) }

var fixed = time.Date(2025, 2, 12, 8, 0, 0, 0, time.UTC)

type apiOption func(*httpin.APIConfig)

func newAPI(t testing.TB, logs io.Writer, opts ...apiOption) http.Handler {
	t.Helper()
	cfg := httpin.APIConfig{
		Source:        memory.New(domain.SampleCatalogue()[0]),
		Verifier:      tokens,
		RequiredScope: "read:products",
		Clock:         ports.ClockFunc(func() time.Time { return fixed }),
		Logger:        slog.New(slog.NewJSONHandler(logs, nil)),
	}
	for _, o := range opts {
		o(&cfg)
	}
	return httpin.NewAPI(cfg)
}

func do(h http.Handler, method, path, auth string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, nil)
	if auth != "" {
		r.Header.Set("Authorization", auth)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestProductsResponses(t *testing.T) {
	tests := []struct {
		name       string
		opts       []apiOption
		method     string
		auth       string
		wantStatus int
		wantBody   string // exact, or a prefix ending in "…" for error bodies
		wantChall  string
	}{
		{name: "B or C answer the bare array", auth: "Bearer " + goodToken, wantStatus: 200,
			wantBody: `[{"id":1,"name":"Laptop","price":1000}]`},
		{name: "A wraps the envelope", opts: []apiOption{func(c *httpin.APIConfig) { c.Gateway = true }}, auth: "Bearer " + goodToken, wantStatus: 200,
			wantBody: `{"products":[{"id":1,"name":"Laptop","price":1000}],"serviceA_metadata":"request processed at 2025-02-12T08:00:00Z"}`},
		{name: "empty catalogue is []", opts: []apiOption{func(c *httpin.APIConfig) { c.Source = memory.New() }}, auth: "Bearer " + goodToken, wantStatus: 200,
			wantBody: `[]`},
		{name: "bearer scheme is case-insensitive", auth: "bearer " + goodToken, wantStatus: 200,
			wantBody: `[{"id":1,"name":"Laptop","price":1000}]`},
		{name: "missing token", wantStatus: 401, wantChall: `Bearer`, wantBody: `{"error":"unauthorized",…`},
		{name: "other scheme counts as missing", auth: "Basic dXNlcjpwYXNz", wantStatus: 401, wantChall: `Bearer`, wantBody: `{"error":"unauthorized",…`},
		{name: "empty bearer", auth: "Bearer ", wantStatus: 401, wantChall: `Bearer error="invalid_token"`, wantBody: `{"error":"invalid_token",…`},
		{name: "bad token", auth: "Bearer forged.token.x", wantStatus: 401, wantChall: `Bearer error="invalid_token"`, wantBody: `{"error":"invalid_token",…`},
		{name: "missing scope", auth: "Bearer " + noScopeToken, wantStatus: 403, wantChall: `Bearer error="insufficient_scope", scope="read:products"`, wantBody: `{"error":"insufficient_scope",…`},
		{name: "no scope required", opts: []apiOption{func(c *httpin.APIConfig) { c.RequiredScope = "" }}, auth: "Bearer " + noScopeToken, wantStatus: 200,
			wantBody: `[{"id":1,"name":"Laptop","price":1000}]`},
		{name: "method not allowed", method: http.MethodPost, auth: "Bearer " + goodToken, wantStatus: 405, wantBody: `{"error":"method_not_allowed",…`},
		{name: "unknown path", method: http.MethodGet, wantStatus: 404, wantBody: `{"error":"not_found",…`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = http.MethodGet
			}
			path := httpin.ProductsPath
			if tt.wantStatus == 404 {
				path = "/admin"
			}
			w := do(newAPI(t, io.Discard, tt.opts...), method, path, tt.auth)
			if w.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", w.Code, tt.wantStatus, w.Body)
			}
			body := strings.TrimSpace(w.Body.String())
			if prefix, ok := strings.CutSuffix(tt.wantBody, "…"); ok {
				if !strings.HasPrefix(body, prefix) {
					t.Fatalf("body = %s, want prefix %s", body, prefix)
				}
				var e struct{ Error, Message string }
				if err := json.Unmarshal([]byte(body), &e); err != nil || e.Message == "" {
					t.Fatalf("error body %s is not {error, message}: %v", body, err)
				}
			} else if body != tt.wantBody {
				t.Fatalf("body = %s\nwant   %s", body, tt.wantBody)
			}
			if got := w.Header().Get("WWW-Authenticate"); got != tt.wantChall {
				t.Errorf("WWW-Authenticate = %q, want %q", got, tt.wantChall)
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

func TestSourceErrorsMapToStatuses(t *testing.T) {
	rejection := &domain.UpstreamRejection{Status: 401, Challenge: `Bearer error="invalid_token"`, Body: []byte(`{"error":"invalid_token","message":"from C"}`)}
	tests := []struct {
		err        error
		wantStatus int
	}{
		{fmt.Errorf("call upstream: %w", domain.ErrUpstreamUnavailable), 502},
		{fmt.Errorf("call upstream: %w", domain.ErrUpstreamBadResponse), 502},
		{fmt.Errorf("call upstream: %w", domain.ErrUpstreamTimeout), 504},
		{fmt.Errorf("list: %w", domain.ErrSourceUnavailable), 503},
		{fmt.Errorf("verify: %w", domain.ErrVerifierNotReady), 503},
		{errors.New("surprise"), 500},
		{fmt.Errorf("call upstream: %w", rejection), 401},
	}
	for _, tt := range tests {
		t.Run(tt.err.Error(), func(t *testing.T) {
			src := sourceFunc(func(context.Context) ([]domain.Product, error) { return nil, tt.err })
			w := do(newAPI(t, io.Discard, func(c *httpin.APIConfig) { c.Source = src }), http.MethodGet, "/products", "Bearer "+goodToken)
			if w.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d", w.Code, tt.wantStatus)
			}
		})
	}
	t.Run("rejection passes through untouched", func(t *testing.T) {
		src := sourceFunc(func(context.Context) ([]domain.Product, error) { return nil, fmt.Errorf("x: %w", rejection) })
		w := do(newAPI(t, io.Discard, func(c *httpin.APIConfig) { c.Source = src }), http.MethodGet, "/products", "Bearer "+goodToken)
		if w.Header().Get("WWW-Authenticate") != rejection.Challenge || w.Body.String() != string(rejection.Body) {
			t.Fatalf("got %d %q %s", w.Code, w.Header().Get("WWW-Authenticate"), w.Body)
		}
	})
}

func TestVerifiedTokenIsRelayed(t *testing.T) {
	var got relay.Relay
	src := sourceFunc(func(ctx context.Context) ([]domain.Product, error) {
		got, _ = relay.FromContext(ctx)
		return nil, nil
	})
	do(newAPI(t, io.Discard, func(c *httpin.APIConfig) { c.Source = src }), http.MethodGet, "/products", "Bearer "+goodToken)
	if got.Token() != goodToken {
		t.Fatalf("relayed token = %q", got.Token())
	}
}

func TestSourceNotCalledWhenRefused(t *testing.T) {
	src := sourceFunc(func(context.Context) ([]domain.Product, error) {
		t.Error("the source was called for a refused request")
		return nil, nil
	})
	peerRefused := func(*http.Request) (string, error) {
		return "spiffe://cluster.local/ns/default/sa/service-b", fmt.Errorf("%w: wrong workload", domain.ErrPeerForbidden)
	}
	h := newAPI(t, io.Discard, func(c *httpin.APIConfig) { c.Source = src })
	for _, auth := range []string{"", "Bearer bad", "Bearer " + noScopeToken} {
		do(h, http.MethodGet, "/products", auth)
	}
	withPeer := newAPI(t, io.Discard, func(c *httpin.APIConfig) { c.Source = src; c.Peer = peerRefused })
	if w := do(withPeer, http.MethodGet, "/products", "Bearer "+goodToken); w.Code != 403 || w.Header().Get("WWW-Authenticate") != "" {
		t.Fatalf("wrong workload with a valid token: %d %q", w.Code, w.Header().Get("WWW-Authenticate"))
	}
}

func TestPeerAndTokenLayersAreIndependent(t *testing.T) {
	allowed := func(*http.Request) (string, error) { return "spiffe://cluster.local/ns/default/sa/service-a", nil }
	h := newAPI(t, io.Discard, func(c *httpin.APIConfig) { c.Peer = allowed })
	if w := do(h, http.MethodGet, "/products", "Bearer bad"); w.Code != 401 {
		t.Fatalf("right workload, bad token: %d, want 401", w.Code)
	}
	if w := do(h, http.MethodGet, "/products", "Bearer "+goodToken); w.Code != 200 {
		t.Fatalf("right workload, good token: %d, want 200", w.Code)
	}
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
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("want one line per request, got %d:\n%s", len(lines), out)
	}
	var rejected, accepted map[string]any
	_ = json.Unmarshal([]byte(lines[0]), &rejected)
	_ = json.Unmarshal([]byte(lines[1]), &accepted)
	if e, _ := rejected["error"].(map[string]any); e["reason"] != domain.ReasonBadSignature || rejected["status"] != float64(401) {
		t.Errorf("rejection line lacks its reason: %s", lines[0])
	}
	if accepted["sub"] != "auth0|user123" || accepted["request_id"] == "" || accepted["path"] != "/products" {
		t.Errorf("access line = %s", lines[1])
	}
}

func TestHeaderTooLargeIs431(t *testing.T) {
	srv := startServer(t, newAPI(t, io.Discard))
	req, _ := http.NewRequest(http.MethodGet, "http://"+srv.Addr()+"/products", nil)
	req.Header.Set("X-Big", strings.Repeat("a", 64<<10))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("status = %d, want 431", resp.StatusCode)
	}
}

func TestGracefulShutdownFinishesInFlight(t *testing.T) {
	entered := make(chan struct{})
	release := make(chan struct{})
	slow := sourceFunc(func(ctx context.Context) ([]domain.Product, error) {
		close(entered)
		<-release
		return nil, nil
	})
	srv, err := httpin.NewServer("api", "127.0.0.1:0", newAPI(t, io.Discard, func(c *httpin.APIConfig) { c.Source = slow }), httpin.DefaultLimits(), nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx, 10*time.Second) }()

	respc := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, "http://"+srv.Addr()+"/products", nil)
		req.Header.Set("Authorization", "Bearer "+goodToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			respc <- 0
			return
		}
		resp.Body.Close()
		respc <- resp.StatusCode
	}()
	<-entered
	stop() // SIGTERM arrives while the request is in flight
	time.Sleep(50 * time.Millisecond)
	if _, err := http.Get("http://" + srv.Addr() + "/products"); err == nil {
		t.Error("new connections are still accepted after shutdown began")
	}
	close(release)
	if code := <-respc; code != 200 {
		t.Fatalf("in-flight request got %d, want 200", code)
	}
	if err := <-done; err != nil {
		t.Fatalf("Run = %v, want clean exit", err)
	}
}

func TestAdmin(t *testing.T) {
	var mysqlDown error = errors.New("dial tcp: connection refused")
	admin := httpin.NewAdmin(map[string]httpin.ReadyCheck{
		"oidc":  func(context.Context) error { return nil },
		"mysql": func(context.Context) error { return mysqlDown },
	}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("metrics")) }))
	if w := do(admin, http.MethodGet, httpin.HealthzPath, ""); w.Code != 200 {
		t.Fatalf("healthz = %d", w.Code)
	}
	if w := do(admin, http.MethodGet, httpin.ReadyzPath, ""); w.Code != 503 || !strings.Contains(w.Body.String(), "mysql") {
		t.Fatalf("readyz with mysql down = %d %s", w.Code, w.Body)
	}
	mysqlDown = nil
	if w := do(admin, http.MethodGet, httpin.ReadyzPath, ""); w.Code != 200 {
		t.Fatalf("readyz = %d %s", w.Code, w.Body)
	}
	if w := do(admin, http.MethodGet, httpin.MetricsPath, ""); w.Body.String() != "metrics" {
		t.Fatalf("metrics = %s", w.Body)
	}
	admin.Drain()
	if w := do(admin, http.MethodGet, httpin.ReadyzPath, ""); w.Code != 503 {
		t.Fatalf("readyz while draining = %d", w.Code)
	}
	if w := do(admin, http.MethodGet, httpin.HealthzPath, ""); w.Code != 200 {
		t.Fatalf("healthz while draining = %d: the process is still alive", w.Code)
	}
}

func startServer(t testing.TB, h http.Handler) *httpin.Server {
	t.Helper()
	srv, err := httpin.NewServer("api", "127.0.0.1:0", h, httpin.DefaultLimits(), nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = srv.Run(ctx, time.Second); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return srv
}
