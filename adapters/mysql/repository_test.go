package mysql_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/trustchain/trustchain/adapters/mysql"
	"github.com/trustchain/trustchain/domain"
	"github.com/trustchain/trustchain/internal/testkit/mysqltest"
	"github.com/trustchain/trustchain/internal/testkit/storetest"
	"github.com/trustchain/trustchain/ports"
)

func TestRepositoryContract(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		storetest.RunProductSourceContract(t, func(tb testing.TB, products []domain.Product) (ports.ProductSource, context.Context) {
			db := migratedDB(tb, tg.dsn)
			if err := db.InsertProducts(context.Background(), products...); err != nil {
				tb.Fatalf("InsertProducts: %v", err)
			}
			return mysql.NewRepository(db), context.Background()
		})
	})
}

// TestListProductsRefusesBadRows covers rows the schema accepts but the
// domain does not: they must fail the call, never reach a caller or panic.
// Rows whose id is not positive lie before every cursor, so no page ever
// reads them.
func TestListProductsRefusesBadRows(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		tests := []struct {
			name    string
			row     string
			wantErr bool
		}{
			{name: "empty name", row: "(100, '', 1.00)", wantErr: true},
			{name: "negative id", row: "(-7, 'Laptop', 1.00)"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				db := migratedDB(t, tg.dsn)
				if err := db.Seed(context.Background()); err != nil {
					t.Fatalf("Seed: %v", err)
				}
				exec(t, db, "INSERT INTO products (id, name, price) VALUES "+tt.row)

				got, err := mysql.NewRepository(db).ListProducts(context.Background(), firstPage(t))
				if !tt.wantErr {
					if err != nil || storetest.Text(got.Products()) != storetest.Text(domain.SampleCatalogue()) {
						t.Fatalf("ListProducts = %s, %v; want the sample catalogue alone", storetest.Text(got.Products()), err)
					}
					return
				}
				if !errors.Is(err, domain.ErrSourceUnavailable) {
					t.Fatalf("ListProducts error = %v, want one matching ErrSourceUnavailable", err)
				}
				if got.Products() != nil {
					t.Errorf("ListProducts returned %d products with an error; want none", len(got.Products()))
				}
			})
		}
	})
}

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
				_, err := mysql.NewRepository(db).ListProducts(ctx, firstPage(t))
				elapsed := time.Since(start)

				storetest.CheckDoneContext(t, err, tt.wantErr)
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

		got := storetest.List(t, ctx, mysql.NewRepository(db), 0, 10)
		want := `1 "Laptop Pro" 1500.5; 2 "Mouse" 25`
		if g := storetest.Text(got.Products()); g != want {
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
		got := storetest.List(t, ctx, mysql.NewRepository(db), 0, 10)
		if g, want := storetest.Text(got.Products()), storetest.Text(domain.SampleCatalogue()); g != want {
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
	req, err := domain.NewPageRequest(0, len(products))
	if err != nil {
		b.Fatal(err)
	}

	b.ReportAllocs()
	for b.Loop() {
		got, err := repo.ListProducts(ctx, req)
		if err != nil {
			b.Fatalf("ListProducts: %v", err)
		}
		if len(got.Products()) != len(products) {
			b.Fatalf("ListProducts returned %d products, want %d", len(got.Products()), len(products))
		}
	}
}

func firstPage(tb testing.TB) domain.PageRequest {
	tb.Helper()
	req, err := domain.NewPageRequest(0, 100)
	if err != nil {
		tb.Fatal(err)
	}
	return req
}

func TestInsertWithoutAnIDTakesTheNext(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		db := migratedDB(t, tg.dsn)
		ctx := context.Background()
		if err := db.Seed(ctx); err != nil {
			t.Fatal(err)
		}
		exec(t, db, "INSERT INTO products (name, price) VALUES ('Mouse', 19.99)")
		p, err := mysql.NewRepository(db).GetProduct(ctx, 4)
		if err != nil {
			t.Fatalf("the operator's product did not get id 4: %v", err)
		}
		if got := storetest.Text([]domain.Product{p}); got != `4 "Mouse" 19.99` {
			t.Errorf("inserted product = %s", got)
		}
	})
}
