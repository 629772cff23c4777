package app_test

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	gomysql "github.com/go-sql-driver/mysql"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/trustchain/trustchain/app"
	"github.com/trustchain/trustchain/internal/testkit/mysqltest"
)

// mysqlDSN returns a private, empty schema on the embedded engine.
func mysqlDSN(t testing.TB) string {
	t.Helper()
	return mysqltest.FreshSchema(t, mysqltest.StartEmbedded(t))
}

func TestTraceReachesTheDatabase(t *testing.T) {
	dsn := mysqlDSN(t)
	mc := app.MigrateConfig{MySQLDSN: dsn, Timeout: 30 * time.Second}
	if err := app.Migrate(context.Background(), mc, app.MigrateUp, io.Discard); err != nil {
		t.Fatal(err)
	}
	if err := app.Seed(context.Background(), mc, io.Discard); err != nil {
		t.Fatal(err)
	}
	exporter := tracetest.NewInMemoryExporter()
	c := startChain(t, chainOptions{peerAuth: app.PeerAuthOff, exporter: exporter, mysqlDSN: dsn})
	status, _, body := get(t, nil, c.url(roleA)+"/products", c.token(nil), nil)
	if status != 200 || !strings.Contains(body, `{"id":3,"name":"USB-C Cable","price":19.99}`) {
		t.Fatalf("%d %s", status, body)
	}
	metrics := scrape(t, c, roleB)
	cfg, err := gomysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`trustchain_db_query_duration_seconds_count{operation="select",role="b"}`,
		// The pool's series name the schema the DSN names, and the role.
		`go_sql_open_connections{db_name="` + cfg.DBName + `",role="b"}`,
		`go_sql_max_open_connections{db_name="` + cfg.DBName + `",role="b"} 20`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("B's /metrics lacks %s", want)
		}
	}

	var bServer trace.SpanContext
	var dbSpans []tracetest.SpanStub
	for _, s := range exporter.GetSpans() {
		for _, kv := range s.Resource.Attributes() {
			if kv.Key == "service.name" && kv.Value.AsString() == "service-b" && s.SpanKind == trace.SpanKindServer {
				bServer = s.SpanContext
			}
		}
		for _, kv := range s.Attributes {
			if kv.Key == "db.system" || kv.Key == "db.system.name" {
				dbSpans = append(dbSpans, s)
			}
		}
	}
	if !bServer.IsValid() || len(dbSpans) == 0 {
		t.Fatalf("want B's server span and a DB span; got %d spans", len(exporter.GetSpans()))
	}
	for _, s := range dbSpans {
		if s.SpanContext.TraceID() != bServer.TraceID() {
			t.Errorf("DB span %q is in trace %s, B's request in %s", s.Name, s.SpanContext.TraceID(), bServer.TraceID())
		}
	}
}
