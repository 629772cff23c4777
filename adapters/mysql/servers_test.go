package mysql_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net"
	"os"
	"testing"

	sqle "github.com/dolthub/go-mysql-server"
	gmsmemory "github.com/dolthub/go-mysql-server/memory"
	"github.com/dolthub/go-mysql-server/server"
	gmssql "github.com/dolthub/go-mysql-server/sql"
	gomysql "github.com/go-sql-driver/mysql"

	"github.com/trustchain/trustchain/adapters/mysql"
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
	embedded := target{name: "embedded", dsn: startEmbedded(tb)}
	real := target{name: "real", dsn: os.Getenv("MYSQL_TEST_DSN")}
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

// startEmbedded serves an empty go-mysql-server engine over TCP on a free
// loopback port, for the life of the test, and returns a DSN for it. The
// driver then talks to it exactly as it would to MySQL: same protocol, same
// code path in the adapter.
func startEmbedded(tb testing.TB) string {
	tb.Helper()
	provider := gmsmemory.NewDBProvider()
	provider.WithOption(gmsmemory.NativeIndexProvider(true))
	engine := sqle.NewDefault(provider)

	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("listen: %v", err)
	}
	cfg := server.Config{Protocol: "tcp", Address: listener.Addr().String(), Listener: listener}
	srv, err := server.NewServer(cfg, engine, gmssql.NewContext, gmsmemory.NewSessionBuilder(provider), nil)
	if err != nil {
		tb.Fatalf("start embedded MySQL server: %v", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Start() // returns when the listener closes
	}()
	tb.Cleanup(func() {
		_ = srv.Close()
		<-done
	})
	return "root@tcp(" + listener.Addr().String() + ")/"
}

// freshDB opens a new, empty schema on the server dsn names: no migrations
// have run.
func freshDB(tb testing.TB, dsn string) *mysql.DB {
	tb.Helper()
	return open(tb, freshSchema(tb, dsn))
}

// freshSchema creates a uniquely named schema on the server dsn names, drops
// it when the test ends, and returns a DSN for it, so tests and runs never
// see each other's rows.
func freshSchema(tb testing.TB, dsn string) string {
	tb.Helper()
	cfg, err := gomysql.ParseDSN(dsn)
	if err != nil {
		tb.Fatalf("parse test DSN: %v", err)
	}
	admin := openRaw(tb, cfg)

	suffix := make([]byte, 6)
	_, _ = rand.Read(suffix)
	cfg.DBName = "trustchain_test_" + hex.EncodeToString(suffix)
	if _, err := admin.ExecContext(context.Background(), "CREATE DATABASE "+cfg.DBName); err != nil {
		tb.Fatalf("create test database: %v", err)
	}
	tb.Cleanup(func() {
		if _, err := admin.ExecContext(context.Background(), "DROP DATABASE IF EXISTS "+cfg.DBName); err != nil {
			tb.Errorf("drop test database %s: %v", cfg.DBName, err)
		}
	})
	return cfg.FormatDSN()
}

// open is mysql.Open with the default pool, closed when the test ends.
func open(tb testing.TB, dsn string) *mysql.DB {
	tb.Helper()
	db, err := mysql.Open(context.Background(), dsn, mysql.PoolConfig{})
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

// openRaw opens a plain database/sql pool, for the test's own statements.
func openRaw(tb testing.TB, cfg *gomysql.Config) *sql.DB {
	tb.Helper()
	connector, err := gomysql.NewConnector(cfg)
	if err != nil {
		tb.Fatalf("connector: %v", err)
	}
	db := sql.OpenDB(connector)
	tb.Cleanup(func() { _ = db.Close() })
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
