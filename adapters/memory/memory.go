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

// ListProducts returns the page req asks for, found by binary search on the
// id as an index seek would, and copied: the caller owns it.
func (s *Store) ListProducts(ctx context.Context, req domain.PageRequest) (domain.Page, error) {
	if err := doneErr(ctx); err != nil {
		return domain.Page{}, fmt.Errorf("list products: %w", err)
	}
	start, _ := slices.BinarySearchFunc(s.products, req.After()+1, func(p domain.Product, id int64) int { return cmp.Compare(p.ID(), id) })
	end := min(start+req.Limit(), len(s.products))
	page, err := domain.NewPage(req, slices.Clone(s.products[start:end]), end < len(s.products))
	if err != nil {
		return domain.Page{}, fmt.Errorf("list products: %w: %w", domain.ErrSourceUnavailable, err)
	}
	return page, nil
}

// GetProduct returns the product with id.
func (s *Store) GetProduct(ctx context.Context, id int64) (domain.Product, error) {
	if err := doneErr(ctx); err != nil {
		return domain.Product{}, fmt.Errorf("get product %d: %w", id, err)
	}
	i, found := slices.BinarySearchFunc(s.products, id, func(p domain.Product, id int64) int { return cmp.Compare(p.ID(), id) })
	if !found {
		return domain.Product{}, fmt.Errorf("get product %d: %w", id, domain.ErrNotFound)
	}
	return s.products[i], nil
}

// doneErr fails a call whose ctx is done, as a database would, so callers
// see one behaviour from every adapter: a cancelled ctx gives an error
// matching context.Canceled; a passed deadline, one matching both
// context.DeadlineExceeded and domain.ErrSourceTimeout.
func doneErr(ctx context.Context) error {
	err := ctx.Err()
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %w", domain.ErrSourceTimeout, err)
	}
	return err
}
