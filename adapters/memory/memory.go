// Package memory is a ProductSource held in process memory, for the demo role
// and for tests that need a catalogue without a database.
package memory

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/trustchain/trustchain/domain"
	"github.com/trustchain/trustchain/ports"
)

var _ ports.ProductSource = (*Store)(nil)

// Store serves a fixed catalogue. It never changes after New, which is what
// makes it safe for concurrent use without a lock.
type Store struct {
	products []domain.Product // ordered by id, one entry per id
}

// New returns a store holding products. Like a write to the MySQL table, a
// later product replaces an earlier one with the same id. The caller's slice
// is copied, so changing it later does not change the store.
func New(products ...domain.Product) *Store {
	byID := make(map[int64]domain.Product, len(products))
	for _, p := range products {
		byID[p.ID()] = p
	}
	sorted := make([]domain.Product, 0, len(byID))
	for _, p := range byID {
		sorted = append(sorted, p)
	}
	slices.SortFunc(sorted, func(a, b domain.Product) int { return cmp.Compare(a.ID(), b.ID()) })
	return &Store{products: sorted}
}

// ListProducts returns a copy of the catalogue ordered by id. A done ctx
// fails the call as it would with a database, so callers see one behaviour
// from every adapter: a cancelled ctx gives an error matching
// context.Canceled; a passed deadline, one matching both
// context.DeadlineExceeded and domain.ErrSourceUnavailable.
func (s *Store) ListProducts(ctx context.Context) ([]domain.Product, error) {
	if err := ctx.Err(); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("list products: %w: %w", domain.ErrSourceUnavailable, err)
		}
		return nil, fmt.Errorf("list products: %w", err)
	}
	out := make([]domain.Product, len(s.products))
	copy(out, s.products)
	return out, nil
}
