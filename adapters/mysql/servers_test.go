package mysql_test

import (
	"context"
	"os"
	"testing"

	"github.com/trustchain/trustchain/adapters/mysql"
	"github.com/trustchain/trustchain/internal/testkit/mysqltest"
)

// target is a server that speaks the MySQL protocol. Every test that needs
// a database runs once per target.
type target struct {
	name string
	dsn  string // names no database; each test creates its own
	skip string // why this target is not available, if it is not
}

// targets returns the embedded engine, always, and the real server that
// MYSQL_TEST_DSN names, when it is set.
func targets(tb testing.TB) []target {
	tb.Helper()
	embedded := target{name: "embedded", dsn: mysqltest.StartEmbedded(tb)}
	real := target{name: "real", dsn: os.Getenv(mysqltest.EnvDSN)}
	if real.dsn == "" {
		real.skip = "MYSQL_TEST_DSN is not set; set it, e.g. MYSQL_TEST_DSN='root@tcp(127.0.0.1:3306)/test', to run against a real MySQL or MariaDB"
	}
	return []target{embedded, real}
}

// forEachTarget runs fn as a subtest per target.
func forEachTarget(t *testing.T, fn func(t *testing.T, tg target)) {
	t.Helper()
	for _, tg := range targets(t) {
		t.Run(tg.name, func(t *testing.T) {
			if tg.skip != "" {
				t.Skip(tg.skip)
			}
			fn(t, tg)
		})
	}
}

// freshDB opens a new, empty schema on the server dsn names: no migrations
// have run.
func freshDB(tb testing.TB, dsn string) *mysql.DB {
	tb.Helper()
	return open(tb, mysqltest.FreshSchema(tb, dsn))
}

// open is mysql.Open with the default pool, closed when the test ends.
func open(tb testing.TB, dsn string) *mysql.DB {
	tb.Helper()
	db, err := mysql.Open(dsn, mysql.PoolConfig{})
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() {
		if err := db.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return db
}

// migratedDB is freshDB with every migration applied.
func migratedDB(tb testing.TB, dsn string) *mysql.DB {
	tb.Helper()
	db := freshDB(tb, dsn)
	if err := db.MigrateUp(context.Background()); err != nil {
		tb.Fatalf("MigrateUp: %v", err)
	}
	return db
}

// exec runs statements on db, failing the test on the first error.
func exec(tb testing.TB, db *mysql.DB, statements ...string) {
	tb.Helper()
	for _, s := range statements {
		if _, err := db.Bun().ExecContext(context.Background(), s); err != nil {
			tb.Fatalf("%s: %v", s, err)
		}
	}
}

// tableExists reports whether db's schema has the named table.
func tableExists(tb testing.TB, db *mysql.DB, table string) bool {
	tb.Helper()
	var n int
	err := db.Bun().QueryRowContext(context.Background(),
		"SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?", table).Scan(&n)
	if err != nil {
		tb.Fatalf("look up table %s: %v", table, err)
	}
	return n > 0
}
