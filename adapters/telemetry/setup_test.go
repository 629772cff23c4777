package telemetry_test

import (
	"database/sql"
	"net"
	"runtime"
	"testing"

	_ "github.com/go-sql-driver/mysql"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/mysqldialect"
)

func runtimeVersion() string { return runtime.Version() }

// openUnreachableDB returns a bun DB whose server is a closed local port:
// queries fail fast, but bun still runs its hooks, which is all these tests
// need from a database.
func openUnreachableDB(tb testing.TB) *bun.DB {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	sqldb, err := sql.Open("mysql", "u:p@tcp("+addr+")/trustchain?timeout=1s")
	if err != nil {
		tb.Fatal(err)
	}
	db := bun.NewDB(sqldb, mysqldialect.New())
	tb.Cleanup(func() { db.Close() })
	return db
}
