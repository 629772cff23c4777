package server_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/trustchain/trustchain/adapters/httpapi/server"
	"github.com/trustchain/trustchain/adapters/memory"
	"github.com/trustchain/trustchain/domain"
	"github.com/trustchain/trustchain/ports"
)

// tokenTable is a verifier over a fixed set of tokens: a real
// implementation of the port, so the handler under test runs whole.
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

// sourceFuncs adapts functions to ports.ProductSource; a nil one serves
// the seed's Laptop.
type sourceFuncs struct {
	list func(context.Context, domain.PageRequest) (domain.Page, error)
	get  func(context.Context, int64) (domain.Product, error)
}

var seedStore = memory.New(domain.SampleCatalogue()[0])

func (f sourceFuncs) ListProducts(ctx context.Context, req domain.PageRequest) (domain.Page, error) {
	if f.list == nil {
		return seedStore.ListProducts(ctx, req)
	}
	return f.list(ctx, req)
}

func (f sourceFuncs) GetProduct(ctx context.Context, id int64) (domain.Product, error) {
	if f.get == nil {
		return seedStore.GetProduct(ctx, id)
	}
	return f.get(ctx, id)
}

func failing(err error) sourceFuncs {
	return sourceFuncs{
		list: func(context.Context, domain.PageRequest) (domain.Page, error) { return domain.Page{}, err },
		get:  func(context.Context, int64) (domain.Product, error) { return domain.Product{}, err },
	}
}

var fixed = time.Date(2025, 2, 12, 8, 0, 0, 0, time.UTC)

type apiOption func(*server.APIConfig)

func newAPI(tb testing.TB, logs io.Writer, opts ...apiOption) http.Handler {
	tb.Helper()
	cfg := server.APIConfig{
		Source:        memory.New(domain.SampleCatalogue()[0]),
		Verifier:      tokens,
		RequiredScope: "read:products",
		Paging:        server.Paging{DefaultLimit: 100, MaxLimit: 1000},
		Clock:         ports.ClockFunc(func() time.Time { return fixed }),
		Logger:        slog.New(slog.NewJSONHandler(logs, nil)),
	}
	for _, o := range opts {
		o(&cfg)
	}
	return server.NewAPI(cfg)
}

func withSource(s ports.ProductSource) apiOption {
	return func(c *server.APIConfig) { c.Source = s }
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

// startServer serves h on loopback with the API's limits.
func startServer(tb testing.TB, h http.Handler, limits server.Limits) *server.Server {
	tb.Helper()
	return startLoggedServer(tb, h, limits, io.Discard)
}

// startLoggedServer is startServer with the server's log lines going to logs.
func startLoggedServer(tb testing.TB, h http.Handler, limits server.Limits, logs io.Writer) *server.Server {
	tb.Helper()
	srv, err := server.NewServer("api", "127.0.0.1:0", h, limits, nil, slog.New(slog.NewJSONHandler(logs, nil)))
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = srv.Run(ctx, time.Second); close(done) }()
	tb.Cleanup(func() { cancel(); <-done })
	return srv
}

func recorder() *httptest.ResponseRecorder { return httptest.NewRecorder() }

// peerFunc is a peer check written as a function.
type peerFunc func(*http.Request) (string, error)

func (f peerFunc) CheckPeer(r *http.Request) (string, error) { return f(r) }
