// Package mysql stores the product catalogue in MySQL or MariaDB through bun
// and go-sql-driver/mysql: it opens the pool, runs the embedded migrations,
// seeds the sample catalogue and serves ports.ProductSource.
package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	gomysql "github.com/go-sql-driver/mysql"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/mysqldialect"
)

// PoolConfig sizes the connection pool. A zero field takes the value from
// DefaultPoolConfig, so a config that sets nothing still gets bounded
// lifetimes rather than database/sql's "forever".
type PoolConfig struct {
	MaxOpenConns    int
	MaxIdleConns    int
	ConnMaxLifetime time.Duration
	ConnMaxIdleTime time.Duration
	// Log receives the driver's own lines (a dropped idle connection, a
	// packet error) as structured records. nil leaves them to the
	// driver's process-wide logger, plain text on stderr.
	Log *slog.Logger
}

// DefaultPoolConfig suits one replica of Service B. Idle equals open so a
// burst does not close and reopen connections; the lifetime stays under the
// usual proxy and server idle timeouts (wait_timeout defaults to 8h, cloud
// proxies often cut at minutes) and lets a failover's new address be picked up.
func DefaultPoolConfig() PoolConfig {
	return PoolConfig{
		MaxOpenConns:    10,
		MaxIdleConns:    10,
		ConnMaxLifetime: 5 * time.Minute,
		ConnMaxIdleTime: time.Minute,
	}
}

func (p PoolConfig) withDefaults() (PoolConfig, error) {
	if p.MaxOpenConns < 0 || p.MaxIdleConns < 0 || p.ConnMaxLifetime < 0 || p.ConnMaxIdleTime < 0 {
		return PoolConfig{}, fmt.Errorf("pool config %+v has a negative value", p)
	}
	def := DefaultPoolConfig()
	if p.MaxOpenConns == 0 {
		p.MaxOpenConns = def.MaxOpenConns
	}
	if p.MaxIdleConns == 0 {
		p.MaxIdleConns = def.MaxIdleConns
	}
	if p.ConnMaxLifetime == 0 {
		p.ConnMaxLifetime = def.ConnMaxLifetime
	}
	if p.ConnMaxIdleTime == 0 {
		p.ConnMaxIdleTime = def.ConnMaxIdleTime
	}
	return p, nil
}

// DB is a connection pool to the catalogue database.
type DB struct {
	bun    *bun.DB
	dbName string // the schema the DSN names; scopes the migration lock
	addr   string // host:port of the server
}

// Defaults for the DSN's own timeouts, each kept when the DSN sets it: a
// server that accepts TCP and then says nothing must not hold a connection,
// or a caller without a deadline, forever.
const (
	defaultDialTimeout  = 5 * time.Second
	defaultReadTimeout  = 60 * time.Second
	defaultWriteTimeout = 30 * time.Second
)

// Open prepares a pool for the database the DSN names (go-sql-driver's
// format, user:password@tcp(host:port)/dbname?param=value). It does no I/O:
// Connect does, under a deadline, so a server that is down or silent never
// blocks the process from serving its admin port or stopping. parseTime is
// always on: bun/migrate scans DATETIME columns into time.Time.
func Open(dsn string, pool PoolConfig) (*DB, error) {
	cfg, err := parseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("open mysql: %w", err)
	}
	if cfg.DBName == "" {
		// Without one, every statement fails later with "no database
		// selected"; saying so here names the real mistake.
		return nil, errors.New("open mysql: the DSN names no database")
	}
	pool, err = pool.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("open mysql: %w", err)
	}
	cfg.ParseTime = true
	if cfg.Timeout == 0 {
		cfg.Timeout = defaultDialTimeout
	}
	if cfg.ReadTimeout == 0 {
		cfg.ReadTimeout = defaultReadTimeout
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = defaultWriteTimeout
	}
	if pool.Log != nil {
		// Per pool, not mysql.SetLogger: the driver copies its global
		// logger into each config when the DSN is parsed, so setting it
		// later misses every pool made before.
		cfg.Logger = driverLogger{pool.Log}
	}

	connector, err := gomysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("open mysql: %w", err)
	}
	sqldb := sql.OpenDB(connector)
	sqldb.SetMaxOpenConns(pool.MaxOpenConns)
	sqldb.SetMaxIdleConns(pool.MaxIdleConns)
	sqldb.SetConnMaxLifetime(pool.ConnMaxLifetime)
	sqldb.SetConnMaxIdleTime(pool.ConnMaxIdleTime)
	return &DB{bun: bun.NewDB(sqldb, dialect{mysqldialect.New()}), dbName: cfg.DBName, addr: cfg.Addr}, nil
}

// dialect is bun's MySQL dialect without its version probe. bun runs that
// probe when the pool is made, with no deadline, and prints a plain-text
// line when it fails; what it unlocks (MariaDB's RETURNING) is not used
// here. Connect asks the server's version itself, under a deadline.
type dialect struct{ *mysqldialect.Dialect }

func (dialect) Init(*sql.DB) {}

// Connect checks, within ctx, that the server answers, and returns its
// version.
func (db *DB) Connect(ctx context.Context) (string, error) {
	var version string
	if err := db.bun.DB.QueryRowContext(ctx, "SELECT version()").Scan(&version); err != nil {
		return "", fmt.Errorf("connect to mysql at %s: %w", db.addr, err)
	}
	return version, nil
}

// WithQueryHooks returns the pool with hooks around every query (metrics,
// tracing); nil hooks are skipped.
func (db *DB) WithQueryHooks(hooks ...bun.QueryHook) *DB {
	out := *db
	for _, h := range hooks {
		if h != nil {
			out.bun = out.bun.WithQueryHook(h)
		}
	}
	return &out
}

// Name is the schema the DSN names; Addr the server's host:port.
func (db *DB) Name() string { return db.dbName }
func (db *DB) Addr() string { return db.addr }

// driverLogger is the driver's Logger over slog: one warning per line.
type driverLogger struct{ log *slog.Logger }

func (l driverLogger) Print(v ...any) {
	l.log.Warn("mysql driver", slog.String("error", strings.TrimSpace(fmt.Sprint(v...))))
}

// parseDSN parses dsn without ever putting its password in an error: the
// driver's parse errors can quote a piece of the DSN (a parameter value, or a
// "database name" that is really the tail of a password holding a slash), so
// when the DSN carries a password they are replaced by a generic message.
func parseDSN(dsn string) (*gomysql.Config, error) {
	cfg, err := gomysql.ParseDSN(dsn)
	if err == nil {
		return cfg, nil
	}
	if at := strings.LastIndex(dsn, "@"); at > 0 && strings.Contains(dsn[:at], ":") {
		return nil, errors.New("invalid DSN (details withheld because it holds a password): want user:password@tcp(host:port)/dbname?param=value")
	}
	return nil, fmt.Errorf("invalid DSN: %w", err)
}

// Close closes the pool.
func (db *DB) Close() error {
	if err := db.bun.Close(); err != nil {
		return fmt.Errorf("close mysql: %w", err)
	}
	return nil
}

// Ping checks that the database answers; it backs the readiness probe.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.bun.PingContext(ctx); err != nil {
		return fmt.Errorf("ping mysql: %w", err)
	}
	return nil
}

// Ready backs the readiness probe: the database answers, and its schema
// is migrated, so a database dropped or rolled back under a running B
// turns it not ready rather than into a stream of 503s.
func (db *DB) Ready(ctx context.Context) error {
	if err := db.Ping(ctx); err != nil {
		return err
	}
	return db.CheckSchema(ctx)
}

// Bun exposes the bun handle so the composition root can add query hooks
// such as OpenTelemetry tracing without this package knowing about them.
func (db *DB) Bun() *bun.DB { return db.bun }
