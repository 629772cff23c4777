// Package mysqltest gives tests a server that speaks the MySQL protocol and
// a private schema on it: the embedded go-mysql-server engine always, and a
// real MySQL or MariaDB when MYSQL_TEST_DSN is set. Only tests import it, so
// the embedded engine never enters the production binary.
package mysqltest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net"
	"sync"
	"testing"

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

// FreshSchema creates a uniquely named schema on the server dsn names, drops
// it when the test ends, and returns a DSN for it, so tests and runs never
// see each other's rows.
func FreshSchema(tb testing.TB, dsn string) string {
	tb.Helper()
	cfg, err := gomysql.ParseDSN(dsn)
	if err != nil {
		tb.Fatalf("parse test DSN: %v", err)
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
