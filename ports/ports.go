// Package ports declares the interfaces between trustchain's core and the
// adapters: what the service offers (pages of products, one product) and
// what it needs (a product source, a token verifier, a clock).
package ports

import (
	"context"
	"time"

	"github.com/trustchain/trustchain/domain"
)

// ProductSource serves the catalogue. The MySQL repository, the in-memory
// store and the HTTP client of the next hop all implement it, so a role is
// "serve a ProductSource" with the right adapter behind it.
//
// Every method honours ctx: a cancelled ctx yields an error matching
// context.Canceled (the caller gave up; nothing failed), and a passed
// deadline one matching domain.ErrSourceTimeout or domain.ErrUpstreamTimeout
// (the source was too slow). The credentials the caller presented, if the
// source needs them, travel in ctx (domain.CredentialsFrom).
type ProductSource interface {
	// ListProducts returns the page req asks for: products with an id
	// after req.After(), in id order, at most req.Limit() of them, and
	// whether more follow.
	ListProducts(ctx context.Context, req domain.PageRequest) (domain.Page, error)
	// GetProduct returns the product with id, or an error matching
	// domain.ErrNotFound.
	GetProduct(ctx context.Context, id int64) (domain.Product, error)
}

// TokenVerifier checks a raw bearer token and returns who it speaks for.
// Failures wrap domain.ErrTokenInvalid (as *domain.TokenError) or
// domain.ErrVerifierNotReady.
type TokenVerifier interface {
	Verify(ctx context.Context, rawToken string) (domain.Principal, error)
}

// Clock tells the time; tests substitute a fixed one.
type Clock interface {
	Now() time.Time
}

// ClockFunc adapts a function to Clock.
type ClockFunc func() time.Time

// Now calls f.
func (f ClockFunc) Now() time.Time { return f() }
