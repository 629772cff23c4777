// Package mysqltest gives tests a server that speaks the MySQL protocol and
// a schema of their own on it: the embedded go-mysql-server engine always,
// and, when MYSQL_TEST_DSN is set, the database it names on a real MySQL
// or MariaDB, taken in turns. Only tests import it, so
// the embedded engine never enters the production binary.
package mysqltest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	sqle "github.com/dolthub/go-mysql-server"
	gmsmemory "github.com/dolthub/go-mysql-server/memory"
	"github.com/dolthub/go-mysql-server/server"
	gmssql "github.com/dolthub/go-mysql-server/sql"
	gomysql "github.com/go-sql-driver/mysql"
)

// EnvDSN names the variable that points the tests at a real server.
const EnvDSN = "MYSQL_TEST_DSN"

var quietOnce sync.Once

// quietEngine lowers go-mysql-server's logging to errors: it logs every
// connection at info level through logrus's global logger. The engine's own
// sessions hand out that logger, so the kit reaches it without importing
// logrus, which stays an indirect requirement.
func quietEngine() {
	logger := gmssql.NewBaseSession().GetLogger().Logger
	level := logger.GetLevel()
	if err := level.UnmarshalText([]byte("error")); err == nil {
		logger.SetLevel(level)
	}
}

// StartEmbedded serves an empty go-mysql-server engine over TCP on a free
// loopback port for the life of the test and returns a DSN naming no
// database. The driver talks to it exactly as it would to MySQL.
func StartEmbedded(tb testing.TB) string {
	tb.Helper()
	quietOnce.Do(quietEngine)

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

// FreshSchema returns a DSN for a schema that holds none of the
// catalogue's tables, on the server dsn names, and puts it back as it was
// when the test ends.
//
// When dsn names a database, as MYSQL_TEST_DSN does, that database is the
// one used, and no other is touched: the test waits for a lock named after
// it (GET_LOCK, so tests in every package and process take turns), and at
// the end drops exactly the tables that appeared during the test. A table
// it would create that is already there fails the test rather than be
// taken over. Without a database name (the embedded engine, a private
// server) it creates a uniquely named database and drops it.
func FreshSchema(tb testing.TB, dsn string) string {
	tb.Helper()
	cfg, err := gomysql.ParseDSN(dsn)
	if err != nil {
		tb.Fatalf("parse test DSN: %v", err)
	}
	if cfg.DBName != "" {
		borrowSchema(tb, cfg)
		return cfg.FormatDSN()
	}
	admin := OpenRaw(tb, cfg)
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

// catalogueTables are the tables the migrations create (bun/migrate's two
// bookkeeping tables included): a test would take over any of them.
var catalogueTables = []string{"products", "bun_migrations", "bun_migration_locks"}

// lockWait bounds the wait for the named database: longer than any one
// test holds it, shorter than go test's default timeout.
const lockWait = 8 * time.Minute

// borrowSchema gives the test the database cfg names for its life, as
// FreshSchema describes.
func borrowSchema(tb testing.TB, cfg *gomysql.Config) {
	tb.Helper()
	ctx := context.Background()
	conn, err := OpenRaw(tb, cfg).Conn(ctx)
	if err != nil {
		tb.Fatalf("connect to test database %s: %v", cfg.DBName, err)
	}
	var got sql.NullInt64
	lock := "trustchain.test." + cfg.DBName
	if len(lock) > 64 {
		lock = lock[:64] // MySQL's limit; a shared prefix only means taking turns
	}
	if err := conn.QueryRowContext(ctx, "SELECT GET_LOCK(?, ?)", lock, int(lockWait.Seconds())).Scan(&got); err != nil || got.Int64 != 1 {
		_ = conn.Close()
		tb.Fatalf("lock test database %s: %v (waited %s)", cfg.DBName, err, lockWait)
	}
	// Registered before anything can fail: cleanups run last first, so
	// the tables go before the lock does.
	tb.Cleanup(func() { _ = conn.Close() }) // closing the session frees the lock
	before := tables(tb, conn)
	for _, t := range catalogueTables {
		if before[t] != "" {
			tb.Fatalf("test database %s already holds table %s; the tests drop only tables they create: drop it, or point %s at another database", cfg.DBName, t, EnvDSN)
		}
	}
	tb.Cleanup(func() {
		// Views first: they may read the tables.
		after := tables(tb, conn)
		for _, kind := range []string{"VIEW", "TABLE"} {
			for t, k := range after {
				if before[t] != "" || k != kind {
					continue
				}
				if _, err := conn.ExecContext(ctx, "DROP "+kind+" IF EXISTS `"+t+"`"); err != nil {
					tb.Errorf("drop test %s %s.%s: %v", strings.ToLower(kind), cfg.DBName, t, err)
				}
			}
		}
	})
}

// tables lists the tables and views of conn's database: name -> TABLE
// or VIEW.
func tables(tb testing.TB, conn *sql.Conn) map[string]string {
	tb.Helper()
	rows, err := conn.QueryContext(context.Background(), "SELECT table_name, table_type FROM information_schema.tables WHERE table_schema = DATABASE()")
	if err != nil {
		tb.Fatalf("list test tables: %v", err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var name, kind string
		if err := rows.Scan(&name, &kind); err != nil {
			tb.Fatalf("list test tables: %v", err)
		}
		out[name] = "TABLE"
		if kind == "VIEW" {
			out[name] = kind
		}
	}
	if err := rows.Err(); err != nil {
		tb.Fatalf("list test tables: %v", err)
	}
	return out
}

// OpenRaw opens a plain database/sql pool, for a test's own statements.
func OpenRaw(tb testing.TB, cfg *gomysql.Config) *sql.DB {
	tb.Helper()
	connector, err := gomysql.NewConnector(cfg)
	if err != nil {
		tb.Fatalf("connector: %v", err)
	}
	db := sql.OpenDB(connector)
	tb.Cleanup(func() { _ = db.Close() })
	return db
}

// SilentServer accepts TCP connections and never says a word, as a MySQL
// stuck behind a broken proxy would, for the life of the test. It returns
// its address.
func SilentServer(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	tb.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}
