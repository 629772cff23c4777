package mysql_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/trustchain/trustchain/adapters/mysql"
	"github.com/trustchain/trustchain/adapters/mysql/mysqltest"
	"github.com/trustchain/trustchain/adapters/storetest"
	"github.com/trustchain/trustchain/domain"
	"github.com/trustchain/trustchain/ports"
)

func TestRepositoryContract(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		storetest.RunProductSourceContract(t, func(tb testing.TB, products []domain.Product) ports.ProductSource {
			db := migratedDB(tb, tg.dsn)
			if err := db.InsertProducts(context.Background(), products...); err != nil {
				tb.Fatalf("InsertProducts: %v", err)
			}
			return mysql.NewRepository(db)
		})
	})
}

// TestListProductsRefusesBadRows covers rows the schema accepts but the
// domain does not: they must fail the call, never reach a caller or panic.
func TestListProductsRefusesBadRows(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		tests := []struct {
			name string
			row  string
		}{
			{name: "empty name", row: "(100, '', 1.00)"},
			{name: "zero id", row: "(0, 'Laptop', 1.00)"},
			{name: "negative id", row: "(-7, 'Laptop', 1.00)"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				db := migratedDB(t, tg.dsn)
				if err := db.Seed(context.Background()); err != nil {
					t.Fatalf("Seed: %v", err)
				}
				exec(t, db, "INSERT INTO products (id, name, price) VALUES "+tt.row)

				got, err := mysql.NewRepository(db).ListProducts(context.Background())
				if !errors.Is(err, domain.ErrSourceUnavailable) {
					t.Fatalf("ListProducts error = %v, want one matching ErrSourceUnavailable", err)
				}
				if got != nil {
					t.Errorf("ListProducts returned %d products with an error; want none", len(got))
				}
			})
		}
	})
}

// TestSchemaRefusesBadRows proves the migration's constraints hold on each
// engine, so the domain check above is a second line, not the only one.
func TestSchemaRefusesBadRows(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		db := migratedDB(t, tg.dsn)
		exec(t, db, "INSERT INTO products (id, name, price) VALUES (1, 'Laptop', 1000.00)")

		tests := []struct {
			name string
			row  string
		}{
			{name: "negative price", row: "(2, 'Laptop', -0.01)"},
			{name: "price too large", row: "(2, 'Laptop', 10000000000.00)"},
			{name: "name too long", row: fmt.Sprintf("(2, REPEAT('x', %d), 1.00)", domain.MaxNameLength+1)},
			{name: "null name", row: "(2, NULL, 1.00)"},
			{name: "null price", row: "(2, 'Laptop', NULL)"},
			{name: "duplicate id", row: "(1, 'Laptop', 1.00)"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := db.Bun().ExecContext(context.Background(), "INSERT INTO products (id, name, price) VALUES "+tt.row)
				if err == nil {
					t.Fatalf("inserting %s succeeded; want the schema to refuse it", tt.row)
				}
				t.Logf("refused: %v", err)
			})
		}
	})
}

// TestListProductsCancelsRunningQuery cancels a query the server is still
// running. The products table is swapped for a view that takes seconds to
// answer, so the call can only return early if cancellation reaches the
// driver.
func TestListProductsCancelsRunningQuery(t *testing.T) {
	const slow = 2 * time.Second
	forEachTarget(t, func(t *testing.T, tg target) {
		tests := []struct {
			name    string
			ctx     func() (context.Context, context.CancelFunc)
			wantErr error
		}{
			{
				name: "cancelled",
				ctx: func() (context.Context, context.CancelFunc) {
					ctx, cancel := context.WithCancel(context.Background())
					time.AfterFunc(200*time.Millisecond, cancel)
					return ctx, cancel
				},
				wantErr: context.Canceled,
			},
			{
				name: "deadline",
				ctx: func() (context.Context, context.CancelFunc) {
					return context.WithTimeout(context.Background(), 200*time.Millisecond)
				},
				wantErr: context.DeadlineExceeded,
			},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				db := migratedDB(t, tg.dsn)
				exec(t, db,
					"DROP TABLE products",
					fmt.Sprintf("CREATE VIEW products AS SELECT 1 AS id, 'slow' AS name, CAST(1 AS DECIMAL(12,2)) AS price FROM dual WHERE SLEEP(%d) = 0", int(slow.Seconds())),
				)
				ctx, cancel := tt.ctx()
				defer cancel()

				start := time.Now()
				got, err := mysql.NewRepository(db).ListProducts(ctx)
				elapsed := time.Since(start)

				storetest.CheckDoneContext(t, got, err, tt.wantErr)
				if elapsed >= slow/2 {
					t.Errorf("ListProducts returned after %v; the query was not cancelled", elapsed)
				}
			})
		}
	})
}

func TestInsertProductsReplacesExisting(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		db := migratedDB(t, tg.dsn)
		ctx := context.Background()
		steps := [][]domain.Product{
			{storetest.Product(t, 2, "Mouse", 2500), storetest.Product(t, 1, "Laptop", 100000)},
			{storetest.Product(t, 1, "Laptop Pro", 150050)},
			nil, // no products: nothing to do, not an error
		}
		for _, products := range steps {
			if err := db.InsertProducts(ctx, products...); err != nil {
				t.Fatalf("InsertProducts(%d products): %v", len(products), err)
			}
		}

		got, err := mysql.NewRepository(db).ListProducts(ctx)
		if err != nil {
			t.Fatalf("ListProducts: %v", err)
		}
		want := `[{"id":1,"name":"Laptop Pro","price":1500.5},{"id":2,"name":"Mouse","price":25}]`
		if g := storetest.MarshalJSON(t, got); g != want {
			t.Errorf("ListProducts = %s, want %s", g, want)
		}
	})
}

func TestSeedTwice(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		db := migratedDB(t, tg.dsn)
		ctx := context.Background()
		for i := range 2 {
			if err := db.Seed(ctx); err != nil {
				t.Fatalf("Seed #%d: %v", i+1, err)
			}
		}

		var rows int
		if err := db.Bun().QueryRowContext(ctx, "SELECT COUNT(*) FROM products").Scan(&rows); err != nil {
			t.Fatalf("count products: %v", err)
		}
		if rows != len(domain.SampleCatalogue()) {
			t.Errorf("products has %d rows after seeding twice, want %d", rows, len(domain.SampleCatalogue()))
		}
		got, err := mysql.NewRepository(db).ListProducts(ctx)
		if err != nil {
			t.Fatalf("ListProducts: %v", err)
		}
		if g, want := storetest.MarshalJSON(t, got), storetest.MarshalJSON(t, domain.SampleCatalogue()); g != want {
			t.Errorf("ListProducts = %s, want %s", g, want)
		}
	})
}

// BenchmarkListProducts reads a 100-product catalogue from the embedded
// engine over TCP: driver, bun and domain mapping together. The engine is
// not MySQL, so compare runs with each other, not with production.
func BenchmarkListProducts(b *testing.B) {
	db := migratedDB(b, mysqltest.StartEmbedded(b))
	ctx := context.Background()
	products := make([]domain.Product, 0, 100)
	for id := range int64(100) {
		products = append(products, storetest.Product(b, id+1, fmt.Sprintf("Product %d", id+1), 1999+id))
	}
	if err := db.InsertProducts(ctx, products...); err != nil {
		b.Fatalf("InsertProducts: %v", err)
	}
	repo := mysql.NewRepository(db)

	b.ReportAllocs()
	for b.Loop() {
		got, err := repo.ListProducts(ctx)
		if err != nil {
			b.Fatalf("ListProducts: %v", err)
		}
		if len(got) != len(products) {
			b.Fatalf("ListProducts returned %d products, want %d", len(got), len(products))
		}
	}
}
