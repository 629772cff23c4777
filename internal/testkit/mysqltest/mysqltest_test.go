package mysqltest_test

import (
	"context"
	"database/sql"
	"os"
	"slices"
	"testing"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/trustchain/trustchain/internal/testkit/mysqltest"
)

// TestFreshSchemaUsesTheNamedDatabase: with MYSQL_TEST_DSN, a test works in
// the database it names and leaves it as it found it: its own tables and
// views gone, a table that was there before kept. (.ci/run checks that a
// whole `go test ./...` creates no database.)
func TestFreshSchemaUsesTheNamedDatabase(t *testing.T) {
	dsn := os.Getenv(mysqltest.EnvDSN)
	if dsn == "" {
		t.Skip("MYSQL_TEST_DSN is not set")
	}
	cfg, err := gomysql.ParseDSN(dsn)
	if err != nil || cfg.DBName == "" {
		t.Fatalf("MYSQL_TEST_DSN names no database: %v", err)
	}
	admin := mysqltest.OpenRaw(t, cfg)
	// Someone else's table, made and checked under the kit's lock, so no
	// test in another package is between its snapshot and its cleanup.
	const theirs = "trustchain_kit_not_ours"
	var before []string
	locked(t, admin, cfg.DBName, func(conn *sql.Conn) {
		exec(t, conn, "CREATE TABLE "+theirs+" (id INT)")
		before = list(t, conn, "SHOW TABLES")
	})
	t.Cleanup(func() {
		locked(t, admin, cfg.DBName, func(conn *sql.Conn) { exec(t, conn, "DROP TABLE IF EXISTS "+theirs) })
	})

	t.Run("a test", func(t *testing.T) {
		got := mysqltest.FreshSchema(t, dsn)
		gotCfg, err := gomysql.ParseDSN(got)
		if err != nil || gotCfg.DBName != cfg.DBName {
			t.Fatalf("FreshSchema gave %q, want database %s", got, cfg.DBName)
		}
		conn, err := mysqltest.OpenRaw(t, gotCfg).Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		exec(t, conn, "CREATE TABLE products (id INT)", "CREATE VIEW products_view AS SELECT id FROM products")
	})

	locked(t, admin, cfg.DBName, func(conn *sql.Conn) {
		if got := list(t, conn, "SHOW TABLES"); !slices.Equal(got, before) || !slices.Contains(got, theirs) {
			t.Errorf("tables of %s: %v, then %v", cfg.DBName, before, got)
		}
	})
}

// locked runs f on a connection to db holding the kit's lock on it.
func locked(t *testing.T, pool *sql.DB, db string, f func(*sql.Conn)) {
	t.Helper()
	conn, err := pool.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var got int
	if err := conn.QueryRowContext(context.Background(), "SELECT GET_LOCK(?, 480)", "trustchain.test."+db).Scan(&got); err != nil || got != 1 {
		t.Fatalf("lock %s: %v", db, err)
	}
	defer conn.ExecContext(context.Background(), "DO RELEASE_LOCK(?)", "trustchain.test."+db)
	f(conn)
}

func exec(t *testing.T, db *sql.Conn, statements ...string) {
	t.Helper()
	for _, s := range statements {
		if _, err := db.ExecContext(context.Background(), s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func list(t *testing.T, db *sql.Conn, query string) []string {
	t.Helper()
	rows, err := db.QueryContext(context.Background(), query)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}
