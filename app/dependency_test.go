package app_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/trustchain/trustchain/adapters/dev/issuer"
	"github.com/trustchain/trustchain/app"
	"github.com/trustchain/trustchain/internal/testkit/logbuf"
	"github.com/trustchain/trustchain/internal/testkit/mysqltest"
)

// startRoleB runs role b on the DSN and returns it running, with its log,
// the cancel that plays SIGTERM, and a channel closed once Run returned.
func startRoleB(t *testing.T, issuer, dsn string) (*app.Service, *logbuf.Buffer, context.CancelFunc, <-chan struct{}) {
	t.Helper()
	cfg := app.Defaults()
	cfg.Role, cfg.PeerAuth = "b", app.PeerAuthOff
	cfg.Listen, cfg.AdminListen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.OIDCIssuer, cfg.OIDCAudience = issuer, audience
	cfg.MySQLDSN = dsn
	logs := &logbuf.Buffer{}
	svc, err := app.New(context.Background(), cfg, app.Deps{Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	cancel, done := runService(t, svc)
	return svc, logs, cancel, done
}

func issuerURL(t *testing.T) string {
	t.Helper()
	ts := httpTestIssuer(t)
	return ts.Issuer()
}

func httpTestIssuer(t *testing.T) *issuer.Issuer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	iss, err := issuer.New(issuer.Config{URL: "http://" + ln.Addr().String(), Audience: audience, ClientID: "c", ClientSecret: "s"})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: iss, ReadHeaderTimeout: time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return iss
}

type readiness struct {
	status int
	Status string            `json:"status"`
	Failed map[string]string `json:"failed"`
}

func readyz(t *testing.T, svc *app.Service) readiness {
	t.Helper()
	resp, err := http.Get("http://" + svc.AdminAddr() + "/readyz")
	if err != nil {
		t.Fatalf("the admin port does not answer: %v", err)
	}
	defer resp.Body.Close()
	var r readiness
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	r.status = resp.StatusCode
	return r
}

func eventuallyReady(t *testing.T, svc *app.Service, want func(readiness) bool) readiness {
	t.Helper()
	var r readiness
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if r = readyz(t, svc); want(r) {
			return r
		}
	}
	t.Fatalf("readiness never came: last %+v", r)
	return r
}

// TestMySQLLateIsWaitedFor: B starts before MySQL does. It serves its admin
// port at once, says why it is not ready, retries, and serves once MySQL
// answers; it never exits.
func TestMySQLLateIsWaitedFor(t *testing.T) {
	dsn := mysqltest.FreshSchema(t, mysqltest.StartEmbedded(t))
	mc := app.MigrateConfig{MySQLDSN: dsn, Timeout: 30 * time.Second}
	if err := app.Migrate(context.Background(), mc, app.MigrateUp, io.Discard); err != nil {
		t.Fatal(err)
	}
	if err := app.Seed(context.Background(), mc, io.Discard); err != nil {
		t.Fatal(err)
	}
	// B is pointed at a port nothing listens on yet.
	gate := freePort(t)
	cfg, err := gomysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	target := cfg.Addr
	cfg.Addr = gate
	svc, _, _, done := startRoleB(t, issuerURL(t), cfg.FormatDSN())

	r := eventuallyReady(t, svc, func(r readiness) bool { return strings.Contains(r.Failed["mysql"], "refused") })
	if r.status != 503 || !strings.Contains(r.Failed["mysql"], "connection refused") {
		t.Fatalf("readyz = %d %+v, want 503 naming the refused connection", r.status, r)
	}
	forward(t, gate, target) // MySQL comes up
	eventuallyReady(t, svc, func(r readiness) bool { return r.status == 200 })
	select {
	case <-done:
		t.Fatal("B exited while waiting")
	default:
	}
}

// TestSilentMySQLCannotHangB: a server that accepts TCP and says nothing.
// B still serves its admin port, reports MySQL not ready, and stops at
// once on SIGTERM.
func TestSilentMySQLCannotHangB(t *testing.T) {
	silent := mysqltest.SilentServer(t)
	svc, logs, cancel, done := startRoleB(t, issuerURL(t), "app:pw@tcp("+silent+")/shop")
	r := eventuallyReady(t, svc, func(r readiness) bool { return r.Failed["mysql"] != "" && r.Failed["mysql"] != "not connected yet" })
	if r.status != 503 {
		t.Fatalf("readyz = %+v", r)
	}
	start := time.Now()
	cancel() // SIGTERM
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("B did not stop on SIGTERM while MySQL was silent")
	}
	if took := time.Since(start); took > 7*time.Second {
		t.Errorf("B took %v to stop", took)
	}
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if !json.Valid([]byte(line)) {
			t.Errorf("a log line is not JSON: %q", line)
		}
	}
}

// TestIssuerMismatchIsExplained: the issuer's discovery names another iss
// (Auth0's missing trailing slash): readiness says so.
func TestIssuerMismatchIsExplained(t *testing.T) {
	iss := httpTestIssuer(t)
	cfg := app.Defaults()
	cfg.Role = "a"
	cfg.Listen, cfg.AdminListen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.OIDCIssuer, cfg.OIDCAudience = strings.TrimSuffix(iss.Issuer(), "/"), audience
	cfg.Upstream = "http://127.0.0.1:1"
	svc, err := app.New(context.Background(), cfg, app.Deps{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	runService(t, svc)
	r := eventuallyReady(t, svc, func(r readiness) bool { return strings.Contains(r.Failed["oidc"], "mismatch") })
	want := `issuer mismatch: discovery says "` + iss.Issuer() + `", configured "` + cfg.OIDCIssuer + `"`
	if r.status != 503 || r.Failed["oidc"] != want {
		t.Fatalf("readyz = %d %q, want %q", r.status, r.Failed["oidc"], want)
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// forward listens on addr and pipes every connection to target, until
// the test ends.
func forward(t *testing.T, addr, target string) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, up)
			mu.Unlock()
			wg.Go(func() { _, _ = io.Copy(up, c); up.Close() })
			wg.Go(func() { _, _ = io.Copy(c, up); c.Close() })
		}
	}()
}

// TestEmptyDatabaseIsNotReady: B on a database nobody migrated is not
// ready, and both /readyz and the 503 a caller gets say what to run.
func TestEmptyDatabaseIsNotReady(t *testing.T) {
	iss := httpTestIssuer(t)
	svc, _, _, _ := startRoleB(t, iss.Issuer(), mysqltest.FreshSchema(t, mysqltest.StartEmbedded(t)))
	const hint = "run: trustchain migrate up"
	r := eventuallyReady(t, svc, func(r readiness) bool { return strings.Contains(r.Failed["mysql"], "migrat") })
	if r.status != 503 || !strings.Contains(r.Failed["mysql"], "not migrated") || !strings.Contains(r.Failed["mysql"], hint) {
		t.Fatalf("readyz = %d %+v, want 503 naming the missing schema and %q", r.status, r, hint)
	}
	tok, err := iss.Mint(iss.DefaultClaims("auth0|user123"))
	if err != nil {
		t.Fatal(err)
	}
	var status int
	var body string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		// The token check answers 503 too until the issuer's keys are in.
		if status, _, body = get(t, nil, "http://"+svc.APIAddr()+"/products", tok, nil); strings.Contains(body, "schema") {
			break
		}
	}
	if status != 503 || !strings.Contains(body, "schema is not migrated") || !strings.Contains(body, hint) {
		t.Fatalf("GET /products = %d %s, want 503 saying %q", status, body, hint)
	}
}

// TestDriverLogsAreJSON: the server drops B's pooled connections (KILL, as
// a restart does); the driver's own "closing bad idle connection" line
// reaches B's JSON log, not stderr's plain text. On the embedded engine,
// and on the real server MYSQL_TEST_DSN names when it is set.
func TestDriverLogsAreJSON(t *testing.T) {
	t.Run("embedded", func(t *testing.T) { driverLogsAreJSON(t, mysqltest.FreshSchema(t, mysqltest.StartEmbedded(t))) })
	t.Run("real", func(t *testing.T) {
		dsn := os.Getenv(mysqltest.EnvDSN)
		if dsn == "" {
			t.Skip("MYSQL_TEST_DSN is not set")
		}
		driverLogsAreJSON(t, mysqltest.FreshSchema(t, dsn))
	})
}

func driverLogsAreJSON(t *testing.T, dsn string) {
	mc := app.MigrateConfig{MySQLDSN: dsn, Timeout: 30 * time.Second}
	if err := app.Migrate(context.Background(), mc, app.MigrateUp, io.Discard); err != nil {
		t.Fatal(err)
	}
	svc, logs, _, _ := startRoleB(t, issuerURL(t), dsn)
	eventuallyReady(t, svc, func(r readiness) bool { return r.status == 200 })

	cfg, err := gomysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	admin := mysqltest.OpenRaw(t, cfg)
	conn, err := admin.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var ids []int64
	// B's idle pool: not this connection, nor the test kit's, which holds
	// the database's lock, nor the tests of other packages and processes
	// waiting in GET_LOCK for their turn (COMMAND Query, STATE User lock).
	rows, err := conn.QueryContext(context.Background(),
		"SELECT ID FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() AND DB = ? AND COMMAND = 'Sleep' AND ID <> COALESCE(IS_USED_LOCK(?), 0)", cfg.DBName, "trustchain.test."+cfg.DBName)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if len(ids) == 0 {
		t.Fatal("B holds no connection to kill")
	}
	for _, id := range ids {
		if _, err := conn.ExecContext(context.Background(), "KILL "+strconv.FormatInt(id, 10)); err != nil {
			t.Fatal(err)
		}
	}
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(logs.String(), "bad idle connection"); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no driver line in B's log after the kill:\n%s", logs.String())
		}
		readyz(t, svc) // takes a pooled connection, as a request would
	}
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var entry map[string]any
		if err := json.Unmarshal([]byte(line), &entry); err != nil {
			t.Fatalf("not JSON: %s", line)
		}
		if strings.Contains(line, "bad idle connection") && entry["msg"] != "mysql driver" {
			t.Errorf("driver line without its message: %s", line)
		}
	}
}

// TestSchemaGoneIsNotReady: a schema rolled back under a running B turns
// it not ready, with the same cause as at startup.
func TestSchemaGoneIsNotReady(t *testing.T) {
	dsn := mysqltest.FreshSchema(t, mysqltest.StartEmbedded(t))
	mc := app.MigrateConfig{MySQLDSN: dsn, Timeout: 30 * time.Second}
	if err := app.Migrate(context.Background(), mc, app.MigrateUp, io.Discard); err != nil {
		t.Fatal(err)
	}
	svc, _, _, _ := startRoleB(t, issuerURL(t), dsn)
	eventuallyReady(t, svc, func(r readiness) bool { return r.status == 200 })
	if err := app.Migrate(context.Background(), mc, app.MigrateDown, io.Discard); err != nil {
		t.Fatal(err)
	}
	r := readyz(t, svc)
	if r.status != 503 || !strings.Contains(r.Failed["mysql"], "run: trustchain migrate up") {
		t.Fatalf("readyz after migrate down = %d %+v", r.status, r)
	}
}
