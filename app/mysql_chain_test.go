package app_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	gomysql "github.com/go-sql-driver/mysql"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/trustchain/trustchain/adapters/mysql/mysqltest"
	"github.com/trustchain/trustchain/app"
	"github.com/trustchain/trustchain/internal/logbuf"
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

// TestDemoOnMySQL runs `trustchain demo --mysql-dsn` as a person would:
// a token from the issuer's /oauth/token, then A.
func TestDemoOnMySQL(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	dc := app.DemoDefaults()
	dc.Listen, dc.MySQLDSN, dc.LogLevel = "127.0.0.1:0", mysqlDSN(t), "error"
	demo, err := app.NewDemo(ctx, dc, app.Deps{Stdout: io.Discard, Stderr: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	var out logbuf.Buffer
	done := make(chan error, 1)
	go func() { done <- demo.Run(ctx, &out) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("demo stopped with %v", err)
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(out.String(), "Press Ctrl-C") {
		if time.Now().After(deadline) {
			t.Fatalf("demo did not print its instructions:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}

	form := strings.NewReader(`{"grant_type":"client_credentials","client_id":"trustchain-demo","client_secret":"` + demo.ClientSecret() + `","audience":"https://trustchain.example/api"}`)
	resp, err := http.Post(demo.IssuerURL()+"/oauth/token", "application/json", form)
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
	}
	err = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || tok.AccessToken == "" || tok.TokenType != "Bearer" {
		t.Fatalf("token endpoint: %d %+v %v", resp.StatusCode, tok, err)
	}
	status, _, body := get(t, nil, "http://"+demo.APIAddr(roleA)+"/products", tok.AccessToken, nil)
	if status != 200 || !seedPrefix.MatchString(body) {
		t.Fatalf("A answered %d: %s", status, body)
	}
	if !strings.Contains(out.String(), demo.ClientSecret()) || !strings.Contains(out.String(), "MySQL") {
		t.Fatalf("instructions do not match the demo:\n%s", out.String())
	}
}
