package domain_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/trustchain/trustchain/domain"
)

func products(tb testing.TB, ids ...int64) []domain.Product {
	tb.Helper()
	out := make([]domain.Product, len(ids))
	for i, id := range ids {
		p, err := domain.NewProduct(id, fmt.Sprint("p", id), money(tb, "1"))
		if err != nil {
			tb.Fatal(err)
		}
		out[i] = p
	}
	return out
}

func TestNewPageRequest(t *testing.T) {
	tests := []struct {
		after   int64
		limit   int
		wantErr bool
	}{
		{0, 1, false},
		{41, domain.MaxPageLimit, false},
		{-1, 10, true},
		{0, 0, true},
		{0, -5, true},
		{0, domain.MaxPageLimit + 1, true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("after %d limit %d", tt.after, tt.limit), func(t *testing.T) {
			req, err := domain.NewPageRequest(tt.after, tt.limit)
			if tt.wantErr {
				if !errors.Is(err, domain.ErrInvalidRequest) {
					t.Fatalf("error = %v, want ErrInvalidRequest", err)
				}
				return
			}
			if err != nil || req.After() != tt.after || req.Limit() != tt.limit {
				t.Fatalf("got %+v, %v", req, err)
			}
		})
	}
}

func TestNewPage(t *testing.T) {
	req := func(after int64, limit int) domain.PageRequest {
		r, err := domain.NewPageRequest(after, limit)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	tests := []struct {
		name     string
		req      domain.PageRequest
		ids      []int64
		more     bool
		wantErr  bool
		wantNext string
	}{
		{name: "empty last page", req: req(0, 3)},
		{name: "partial last page", req: req(0, 3), ids: []int64{1, 5}},
		{name: "full page with more", req: req(4, 2), ids: []int64{5, 9}, more: true, wantNext: "9/2"},
		{name: "full last page", req: req(0, 2), ids: []int64{1, 2}},
		{name: "too many", req: req(0, 2), ids: []int64{1, 2, 3}, wantErr: true},
		{name: "not after the cursor", req: req(5, 3), ids: []int64{5, 6}, wantErr: true},
		{name: "descending", req: req(0, 3), ids: []int64{3, 2}, wantErr: true},
		{name: "duplicate", req: req(0, 3), ids: []int64{2, 2}, wantErr: true},
		{name: "more but not full", req: req(0, 3), ids: []int64{1}, more: true, wantErr: true},
		{name: "no request", req: domain.PageRequest{}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			page, err := domain.NewPage(tt.req, products(t, tt.ids...), tt.more)
			if tt.wantErr {
				if !errors.Is(err, domain.ErrInvalidPage) {
					t.Fatalf("error = %v, want ErrInvalidPage", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if page.Products() == nil || len(page.Products()) != len(tt.ids) {
				t.Fatalf("products = %v", page.Products())
			}
			next, more := page.Next()
			got := ""
			if more {
				got = fmt.Sprintf("%d/%d", next.After(), next.Limit())
			}
			if got != tt.wantNext {
				t.Errorf("next = %q, want %q", got, tt.wantNext)
			}
		})
	}
}

func TestCredentialsNeverPrintTheToken(t *testing.T) {
	const token = "eyJ.secret.signature"
	c := domain.NewCredentials(token, "req-1")
	ctx := domain.WithCredentials(context.Background(), c)
	got, ok := domain.CredentialsFrom(ctx)
	if !ok || got.Token() != token || got.RequestID() != "req-1" {
		t.Fatalf("CredentialsFrom = %+v, %v", got, ok)
	}
	if _, ok := domain.CredentialsFrom(context.Background()); ok {
		t.Fatal("credentials found in an empty context")
	}
	var b strings.Builder
	slog.New(slog.NewJSONHandler(&b, nil)).Info("x", "creds", c)
	fmt.Fprintf(&b, "%v %+v %s", c, c, c)
	if strings.Contains(b.String(), "secret") || !strings.Contains(b.String(), "req-1") {
		t.Fatalf("output %q: want the request id and never the token", b.String())
	}
}

func TestTokenReason(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{nil, ""},
		{domain.ErrTokenMissing, domain.ReasonMissing},
		{fmt.Errorf("x: %w", domain.ErrInsufficientScope), domain.ReasonInsufficientScope},
		{fmt.Errorf("x: %w", domain.ErrVerifierNotReady), domain.ReasonNotReady},
		{&domain.TokenError{Reason: domain.ReasonExpired}, domain.ReasonExpired},
		{&domain.TokenError{Reason: "made up"}, domain.ReasonMalformed},
		{domain.ErrNotFound, ""},
	}
	for _, tt := range tests {
		if got := domain.TokenReason(tt.err); got != tt.want {
			t.Errorf("TokenReason(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}
