package mysql

import (
	"context"
	"database/sql"
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

// The reads are fixed statements run through bun, which formats their
// arguments and runs the query hooks (metrics, spans). Written once here
// rather than built per request, they spare every read bun's query builder:
// a model and a 4 KiB query buffer each time, which on B was a third of
// all the bytes a request allocated.
const (
	listProductsSQL = "SELECT id, name, price FROM products WHERE id > ? ORDER BY id LIMIT ?"
	getProductSQL   = "SELECT id, name, price FROM products WHERE id = ?"
)

// Repository serves the catalogue from the products table.
type Repository struct {
	db *bun.DB
}

// NewRepository returns a repository reading through db's pool.
func NewRepository(db *DB) *Repository {
	return &Repository{db: db.bun}
}

// ListProducts reads the page req asks for with an index seek on the
// primary key (WHERE id > after ORDER BY id LIMIT n+1), never OFFSET, so a
// deep page costs what the first does. The extra row says whether more
// follow. Errors follow the port: a cancelled ctx gives context.Canceled
// alone, a passed deadline domain.ErrSourceTimeout, anything else
// (including a row that breaks a domain rule) domain.ErrSourceUnavailable.
func (r *Repository) ListProducts(ctx context.Context, req domain.PageRequest) (domain.Page, error) {
	rows, err := r.db.QueryContext(ctx, listProductsSQL, req.After(), req.Limit()+1)
	if err != nil {
		return domain.Page{}, fmt.Errorf("list products: %w", storeError(ctx, err))
	}
	defer rows.Close()
	products := make([]domain.Product, 0, min(req.Limit()+1, 16)) // grows with the rows, not the limit
	for rows.Next() {
		p, err := scanProduct(rows)
		if err != nil {
			return domain.Page{}, fmt.Errorf("list products: %w", storeError(ctx, err))
		}
		products = append(products, p)
	}
	if err := rows.Err(); err != nil {
		return domain.Page{}, fmt.Errorf("list products: %w", storeError(ctx, err))
	}
	more := len(products) > req.Limit()
	if more {
		products = products[:req.Limit()]
	}
	page, err := domain.NewPage(req, products, more)
	if err != nil {
		return domain.Page{}, fmt.Errorf("list products: %w: %v", domain.ErrSourceUnavailable, err)
	}
	return page, nil
}

// GetProduct reads one row by primary key.
func (r *Repository) GetProduct(ctx context.Context, id int64) (domain.Product, error) {
	rows, err := r.db.QueryContext(ctx, getProductSQL, id)
	if err != nil {
		return domain.Product{}, fmt.Errorf("get product %d: %w", id, storeError(ctx, err))
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return domain.Product{}, fmt.Errorf("get product %d: %w", id, storeError(ctx, err))
		}
		return domain.Product{}, fmt.Errorf("get product %d: %w", id, domain.ErrNotFound)
	}
	p, err := scanProduct(rows)
	if err != nil {
		return domain.Product{}, fmt.Errorf("get product %d: %w", id, storeError(ctx, err))
	}
	return p, nil
}

// scanProduct reads one row into a product. The price arrives as the
// DECIMAL's own text and never passes through float64.
func scanProduct(rows *sql.Rows) (domain.Product, error) {
	var (
		id    int64
		name  string
		price sql.RawBytes
	)
	if err := rows.Scan(&id, &name, &price); err != nil {
		return domain.Product{}, err
	}
	p, err := domain.UnmarshalProductFromStore(id, name, string(price))
	if err != nil {
		return domain.Product{}, fmt.Errorf("%w: %v", domain.ErrSourceUnavailable, err)
	}
	return p, nil
}

// storeError maps a failed query to the port's errors. The driver's own
// error for a cancelled query varies (the context's error, or a closed
// connection), so ctx is the judge.
func storeError(ctx context.Context, err error) error {
	switch ctxErr := ctx.Err(); {
	case errors.Is(ctxErr, context.Canceled):
		return ctxErr
	case ctxErr != nil:
		return fmt.Errorf("%w: %w", domain.ErrSourceTimeout, ctxErr)
	case errors.Is(err, domain.ErrSourceUnavailable):
		return err
	case isNoSuchTable(err):
		return fmt.Errorf("%w: %v", domain.ErrSourceNotMigrated, err)
	default:
		// %v, not %w: callers act on the domain error, and driver errors
		// stay an implementation detail of this adapter.
		return fmt.Errorf("%w: %v", domain.ErrSourceUnavailable, err)
	}
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
