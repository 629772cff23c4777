package client_test

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

// The client is proved against the real API: these stand one up, as the
// hop above would run it.

// tokenTable is a verifier over a fixed set of tokens.
type tokenTable map[string]domain.Principal

func (tt tokenTable) Verify(_ context.Context, raw string) (domain.Principal, error) {
	if p, ok := tt[raw]; ok {
		return p, nil
	}
	return domain.Principal{}, &domain.TokenError{Reason: domain.ReasonBadSignature, Err: errors.New("no such token")}
}

const goodToken = "good.token.value"

type apiOption func(*server.APIConfig)

func newAPI(tb testing.TB, logs io.Writer, opts ...apiOption) http.Handler {
	tb.Helper()
	cfg := server.APIConfig{
		Source:        memory.New(domain.SampleCatalogue()[0]),
		Verifier:      tokenTable{goodToken: domain.NewPrincipal("auth0|user123", []string{"read:products"})},
		RequiredScope: "read:products",
		Paging:        server.Paging{DefaultLimit: 100, MaxLimit: 1000},
		Clock:         ports.ClockFunc(func() time.Time { return time.Date(2025, 2, 12, 8, 0, 0, 0, time.UTC) }),
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
