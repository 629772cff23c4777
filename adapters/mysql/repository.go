package mysql

import (
	"context"
	"errors"
	"fmt"

	"github.com/uptrace/bun"

	"github.com/trustchain/trustchain/domain"
	"github.com/trustchain/trustchain/ports"
)

var _ ports.ProductSource = (*Repository)(nil)

// productRow is a row of the products table. Price stays a string, the
// DECIMAL's own text, so it never passes through float64 on its way to
// domain.Money.
type productRow struct {
	bun.BaseModel `bun:"table:products"`

	ID    int64  `bun:"id,pk"`
	Name  string `bun:"name"`
	Price string `bun:"price"`
}

// Repository serves the catalogue from the products table.
type Repository struct {
	db *bun.DB
}

// NewRepository returns a repository reading through db's pool.
func NewRepository(db *DB) *Repository {
	return &Repository{db: db.bun}
}

// ListProducts returns every product ordered by id. When ctx is done the
// query is cancelled: a cancelled ctx gives an error matching
// context.Canceled and nothing else, since the caller gave up and the store
// did not fail; a passed deadline gives one matching both
// context.DeadlineExceeded and domain.ErrSourceUnavailable, since the store
// did not answer within the budget. Every other failure, including a row
// that breaks a domain rule, matches domain.ErrSourceUnavailable.
func (r *Repository) ListProducts(ctx context.Context) ([]domain.Product, error) {
	var rows []productRow
	err := r.db.NewSelect().Model(&rows).Order("id").Scan(ctx)
	if err != nil {
		// The driver's own error for a cancelled query varies (the context's
		// error, or a closed connection), so ctx is the judge.
		switch ctxErr := ctx.Err(); {
		case errors.Is(ctxErr, context.Canceled):
			return nil, fmt.Errorf("list products: %w", ctxErr)
		case ctxErr != nil:
			return nil, fmt.Errorf("list products: %w: %w", domain.ErrSourceUnavailable, ctxErr)
		default:
			// %v, not %w: callers act on the domain error, and driver
			// errors stay an implementation detail of this adapter.
			return nil, fmt.Errorf("list products: %w: %v", domain.ErrSourceUnavailable, err)
		}
	}

	products := make([]domain.Product, 0, len(rows))
	for _, row := range rows {
		p, err := domain.UnmarshalProductFromStore(row.ID, row.Name, row.Price)
		if err != nil {
			return nil, fmt.Errorf("list products: %w: %v", domain.ErrSourceUnavailable, err)
		}
		products = append(products, p)
	}
	return products, nil
}

// InsertProducts writes products, replacing the name and price of any that
// already exist, so loading the same products twice leaves one row each.
func (db *DB) InsertProducts(ctx context.Context, products ...domain.Product) error {
	if len(products) == 0 {
		return nil
	}
	rows := make([]productRow, 0, len(products))
	for _, p := range products {
		rows = append(rows, productRow{ID: p.ID(), Name: p.Name(), Price: p.Price().Decimal()})
	}
	_, err := db.bun.NewInsert().
		Model(&rows).
		On("DUPLICATE KEY UPDATE").
		Set("name = VALUES(name)").
		Set("price = VALUES(price)").
		Exec(ctx)
	if err != nil {
		return fmt.Errorf("insert products: %w", err)
	}
	return nil
}

// Seed loads domain.SampleCatalogue. Running it again still leaves one row
// per product, with the catalogue's own names and prices.
func (db *DB) Seed(ctx context.Context) error {
	return db.InsertProducts(ctx, domain.SampleCatalogue()...)
}
