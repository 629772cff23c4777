// Package ports declares the interfaces between trustchain's core and the
// adapters: what the service offers (listing products) and what it needs
// (a product source, a token verifier, a clock).
package ports

import (
	"context"
	"time"

	"github.com/trustchain/trustchain/domain"
)

// ProductSource lists the catalogue. The MySQL repository, the in-memory
// store and the HTTP client of the next hop all implement it, so a role is
// just "serve a ProductSource" with the right adapter behind it.
type ProductSource interface {
	// ListProducts returns every product ordered by id. An empty catalogue
	// is an empty, non-nil slice. Cancelling ctx cancels the underlying I/O:
	// a cancelled ctx yields an error matching context.Canceled (the caller
	// gave up; nothing failed), while a passed deadline yields one that also
	// matches a domain "unavailable" or "timeout" error, so the caller's
	// answer says the source was too slow.
	ListProducts(ctx context.Context) ([]domain.Product, error)
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
