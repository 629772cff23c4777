package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/trustchain/trustchain/app"
	"github.com/trustchain/trustchain/internal/testkit/mysqltest"
)

// BenchmarkCatalogueScale loads 1,000, 100,000 and 1,000,000 products into
// real MySQL or MariaDB and times a page of 100 through the whole chain
// (A, C, B and the query, with every check): the first page and the last
// full one. A keyset page seeks the primary key, so the deep page should
// cost what the first does. Each size lives in its own schema,
// trustchain_scale_<n>, loaded once and kept for the next run (drop them to
// reclaim the space). Needs MYSQL_TEST_DSN; skipped without it:
//
//	MYSQL_TEST_DSN='root@tcp(127.0.0.1:3306)/test' go test -run '^$' -bench CatalogueScale -benchtime 300x ./app
func BenchmarkCatalogueScale(b *testing.B) {
	dsn := os.Getenv(mysqltest.EnvDSN)
	if dsn == "" {
		b.Skip("MYSQL_TEST_DSN is not set; the scale benchmark needs a real MySQL or MariaDB")
	}
	const limit = 100
	for _, n := range []int{1_000, 100_000, 1_000_000} {
		schema := scaleSchema(b, dsn, n)
		c := startChain(b, chainOptions{peerAuth: app.PeerAuthOff, mysqlDSN: schema, quiet: true, logLevel: slog.LevelWarn})
		token := c.token(nil)
		client := &http.Client{Timeout: 10 * time.Second}
		for _, page := range []struct {
			name  string
			after int
		}{{"first", 0}, {"deep", n - limit}} {
			b.Run(fmt.Sprintf("products=%d/page=%s", n, page.name), func(b *testing.B) {
				url := fmt.Sprintf("%s/products?after=%d&limit=%d", c.url(roleA), page.after, limit)
				ids := pageIDs(b, client, url, token)
				if len(ids) != limit || ids[0] != int64(page.after+1) {
					b.Fatalf("%s: %d products from id %v, want %d from %d", url, len(ids), ids[:min(1, len(ids))], limit, page.after+1)
				}
				latencies := make([]time.Duration, b.N)
				b.ResetTimer()
				for i := range b.N {
					t0 := time.Now()
					if err := getOK(client, url, token); err != nil {
						b.Fatal(err)
					}
					latencies[i] = time.Since(t0)
				}
				b.StopTimer()
				slices.Sort(latencies)
				b.ReportMetric(ms(latencies[b.N/2]), "p50-ms")
				b.ReportMetric(ms(latencies[b.N*99/100]), "p99-ms")
			})
		}
	}
}

// TestLinkWalkCoversTheCatalogueOnce follows rel="next" from the first page
// of a 200,000-product catalogue on real MySQL or MariaDB, at the largest
// page, and sees every product exactly once, in id order; one product by
// id deep in the table is there, and an id past the end is a 404 at A.
func TestLinkWalkCoversTheCatalogueOnce(t *testing.T) {
	dsn := os.Getenv(mysqltest.EnvDSN)
	if dsn == "" {
		t.Skip("MYSQL_TEST_DSN is not set; this walk needs a real MySQL or MariaDB")
	}
	const n = 200_000
	schema := mysqltest.FreshSchema(t, dsn)
	loadCatalogue(t, schema, n)
	c := startChain(t, chainOptions{peerAuth: app.PeerAuthOff, mysqlDSN: schema, quiet: true, logLevel: slog.LevelWarn})
	token := c.token(nil)
	client := &http.Client{Timeout: 10 * time.Second}

	next, pages, want := "/products?limit=1000", 0, int64(1)
	for next != "" {
		status, header, body := get(t, client, c.url(roleA)+next, token, nil)
		if status != http.StatusOK {
			t.Fatalf("%s: %d %s", next, status, body)
		}
		var page struct {
			Products []struct{ ID int64 } `json:"products"`
		}
		if err := json.Unmarshal([]byte(body), &page); err != nil {
			t.Fatalf("%s: %v", next, err)
		}
		for _, p := range page.Products {
			if p.ID != want {
				t.Fatalf("%s: product %d where %d was due", next, p.ID, want)
			}
			want++
		}
		pages++
		next = nextLink(t, header.Get("Link"))
	}
	if want != n+1 || pages != n/1000 {
		t.Fatalf("walked %d products in %d pages, want %d in %d", want-1, pages, n, n/1000)
	}
	for path, status := range map[string]int{"/products/150000": 200, "/products/200001": 404} {
		if got, _, body := get(t, client, c.url(roleA)+path, token, nil); got != status {
			t.Errorf("%s: %d %s, want %d", path, got, body, status)
		}
	}
}

// nextLink returns the target of a rel="next" Link header, or "".
func nextLink(t testing.TB, link string) string {
	t.Helper()
	if link == "" {
		return ""
	}
	target, params, ok := strings.Cut(link, ";")
	if !ok || strings.TrimSpace(params) != `rel="next"` || !strings.HasPrefix(target, "<") || !strings.HasSuffix(target, ">") {
		t.Fatalf("Link %q is not one rel=\"next\" reference", link)
	}
	return strings.TrimSuffix(strings.TrimPrefix(target, "<"), ">")
}

// pageIDs fetches one page at A and returns its products' ids.
func pageIDs(t testing.TB, client *http.Client, url, token string) []int64 {
	t.Helper()
	status, _, body := get(t, client, url, token, nil)
	if status != http.StatusOK {
		t.Fatalf("%s: %d %s", url, status, body)
	}
	var page struct {
		Products []struct{ ID int64 } `json:"products"`
	}
	if err := json.Unmarshal([]byte(body), &page); err != nil {
		t.Fatal(err)
	}
	ids := make([]int64, len(page.Products))
	for i, p := range page.Products {
		ids[i] = p.ID
	}
	return ids
}

// scaleSchema returns a DSN for trustchain_scale_<n> on the server dsn
// names, holding products 1..n; it loads them only when the schema does
// not already hold exactly those.
func scaleSchema(tb testing.TB, dsn string, n int) string {
	tb.Helper()
	cfg, err := gomysql.ParseDSN(dsn)
	if err != nil {
		tb.Fatal(err)
	}
	admin := mysqltest.OpenRaw(tb, cfg)
	cfg.DBName = "trustchain_scale_" + strconv.Itoa(n)
	if _, err := admin.Exec("CREATE DATABASE IF NOT EXISTS " + cfg.DBName); err != nil {
		tb.Fatal(err)
	}
	schema := cfg.FormatDSN()
	db := mysqltest.OpenRaw(tb, cfg)
	var count, maxID int64
	err = db.QueryRow("SELECT COUNT(*), COALESCE(MAX(id), 0) FROM products").Scan(&count, &maxID)
	if err == nil && count == int64(n) && maxID == int64(n) {
		return schema
	}
	loadCatalogue(tb, schema, n)
	return schema
}

// loadCatalogue migrates the schema dsn names and fills products with ids
// 1..n, in batches of multi-row INSERTs.
func loadCatalogue(tb testing.TB, dsn string, n int) {
	tb.Helper()
	ctx := context.Background()
	mc := app.MigrateConfig{MySQLDSN: dsn, Timeout: time.Minute}
	if err := app.Migrate(ctx, mc, app.MigrateUp, io.Discard); err != nil {
		tb.Fatal(err)
	}
	cfg, err := gomysql.ParseDSN(dsn)
	if err != nil {
		tb.Fatal(err)
	}
	db := mysqltest.OpenRaw(tb, cfg)
	if _, err := db.ExecContext(ctx, "DELETE FROM products"); err != nil {
		tb.Fatal(err)
	}
	const batch = 5_000
	var q strings.Builder
	for first := 1; first <= n; first += batch {
		q.Reset()
		q.WriteString("INSERT INTO products (id, name, price) VALUES ")
		for id := first; id < first+batch && id <= n; id++ {
			if id > first {
				q.WriteByte(',')
			}
			cents := 100 + id*7919%99_900 // 1.00 to 999.99
			fmt.Fprintf(&q, "(%d,'Product %d',%d.%02d)", id, id, cents/100, cents%100)
		}
		if _, err := db.ExecContext(ctx, q.String()); err != nil {
			tb.Fatalf("load products from %d: %v", first, err)
		}
	}
}
