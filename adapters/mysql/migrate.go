package mysql

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	gomysql "github.com/go-sql-driver/mysql"
	"github.com/uptrace/bun/migrate"

	"github.com/trustchain/trustchain/domain"
	"github.com/trustchain/trustchain/migrations"
)

// migrationTable is bun/migrate's record of applied migrations (its
// default name, which the migrator here keeps).
const migrationTable = "bun_migrations"

// defaultMigrationLockWait bounds how long a replica waits for another to
// finish migrating when ctx sets no deadline. Past it the replica fails and
// its orchestrator restarts it, which beats hanging unseen.
const defaultMigrationLockWait = 5 * time.Minute

// MigrateUp applies every pending migration as one group. Replicas that start
// together take turns: the first migrates, the others then find nothing to do.
func (db *DB) MigrateUp(ctx context.Context) error {
	err := db.withMigrator(ctx, func(m *migrate.Migrator) error {
		_, err := m.Migrate(ctx)
		return err
	})
	if err != nil {
		return fmt.Errorf("migrate up: %w", err)
	}
	return nil
}

// MigrateDown rolls back the last group MigrateUp applied.
func (db *DB) MigrateDown(ctx context.Context) error {
	err := db.withMigrator(ctx, func(m *migrate.Migrator) error {
		_, err := m.Rollback(ctx)
		return err
	})
	if err != nil {
		return fmt.Errorf("migrate down: %w", err)
	}
	return nil
}

// MigrateStatus writes one line per known migration to w, oldest first:
//
//	applied  20250701000000_create_products  group 1  2025-07-01T12:00:00Z
//	pending  20250801000000_add_stock
//
// It creates bun/migrate's bookkeeping tables if they are missing, as
// reading the status needs them.
func (db *DB) MigrateStatus(ctx context.Context, w io.Writer) error {
	m, err := db.migrator(ctx)
	if err != nil {
		return fmt.Errorf("migrate status: %w", err)
	}
	ms, err := m.MigrationsWithStatus(ctx)
	if err != nil {
		return fmt.Errorf("migrate status: %w", err)
	}
	for _, mig := range ms {
		if mig.IsApplied() {
			_, err = fmt.Fprintf(w, "applied  %s  group %d  %s\n", mig, mig.GroupID, mig.MigratedAt.UTC().Format(time.RFC3339))
		} else {
			_, err = fmt.Fprintf(w, "pending  %s\n", mig)
		}
		if err != nil {
			return fmt.Errorf("migrate status: %w", err)
		}
	}
	return nil
}

// migrator returns a bun migrator over the embedded migrations, with its
// bookkeeping tables in place.
func (db *DB) migrator(ctx context.Context) (*migrate.Migrator, error) {
	ms, err := migrations.Load()
	if err != nil {
		return nil, err
	}
	// Mark a migration applied only once it succeeded: MySQL commits DDL
	// at once, so a failed migration cannot be rolled back with its record.
	m := migrate.NewMigrator(db.bun, ms, migrate.WithMarkAppliedOnSuccess(true))
	if err := m.Init(ctx); err != nil {
		return nil, fmt.Errorf("create migration tables: %w", err)
	}
	return m, nil
}

// withMigrator runs fn while holding the schema's migration lock.
//
// The lock is MySQL's GET_LOCK rather than bun/migrate's lock table: a row in
// that table outlives a replica killed mid-migration and blocks every later
// start, while GET_LOCK belongs to a session and the server frees it when the
// session ends, however it ends.
func (db *DB) withMigrator(ctx context.Context, fn func(*migrate.Migrator) error) error {
	conn, err := db.bun.Conn(ctx)
	if err != nil {
		return fmt.Errorf("take migration lock: %w", err)
	}
	// Ending the session is the release: it works when ctx is already done,
	// and no pooled session can keep the lock. Returning ErrBadConn from Raw
	// is database/sql's way to discard a connection instead of pooling it.
	defer func() {
		_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		_ = conn.Close()
	}()

	var got sql.NullInt64
	if err := conn.QueryRowContext(ctx, "SELECT GET_LOCK(?, ?)", migrationLockName(db.dbName), lockWaitSeconds(ctx)).Scan(&got); err != nil {
		return fmt.Errorf("take migration lock: %w", err)
	}
	if !got.Valid || got.Int64 != 1 {
		return errors.New("take migration lock: timed out waiting for another migration to finish")
	}

	m, err := db.migrator(ctx)
	if err != nil {
		return err
	}
	return fn(m)
}

// migrationLockName scopes the lock to one schema, so migrating one database
// never waits for another on the same server. MySQL caps lock names at 64
// characters; two long names that share a prefix then share a lock, which
// only makes them take turns.
func migrationLockName(dbName string) string {
	name := "trustchain.migrate." + dbName
	if len(name) > 64 {
		name = name[:64]
	}
	return name
}

// lockWaitSeconds is how long GET_LOCK may wait: until ctx's deadline, or
// defaultMigrationLockWait. GET_LOCK takes whole seconds on MySQL.
func lockWaitSeconds(ctx context.Context) int64 {
	wait := defaultMigrationLockWait
	if deadline, ok := ctx.Deadline(); ok {
		wait = time.Until(deadline)
	}
	return max(int64(math.Ceil(wait.Seconds())), 0)
}

// migrateHint is what an operator runs to apply pending migrations.
const migrateHint = "run: trustchain migrate up"

// erNoSuchTable is MySQL's (and MariaDB's) error 1146, ER_NO_SUCH_TABLE.
const erNoSuchTable = 1146

func isNoSuchTable(err error) bool {
	var myErr *gomysql.MySQLError
	return errors.As(err, &myErr) && myErr.Number == erNoSuchTable
}

// CheckSchema returns nil when every embedded migration is applied, and
// otherwise an error matching domain.ErrSourceNotMigrated that counts what
// is pending and names the command that applies it. It only reads: unlike the migrator, it never creates the
// bookkeeping tables, so a readiness check leaves an empty database empty.
func (db *DB) CheckSchema(ctx context.Context) error {
	ms, err := migrations.Load()
	if err != nil {
		return err
	}
	all := ms.Sorted()
	applied := map[string]bool{}
	// database/sql, not bun: like Connect, a probe is neither traced nor
	// counted as a catalogue query.
	rows, err := db.bun.DB.QueryContext(ctx, "SELECT name FROM "+migrationTable)
	if isNoSuchTable(err) {
		return fmt.Errorf("%w: no migration is applied (%d pending); %s", domain.ErrSourceNotMigrated, len(all), migrateHint)
	}
	if err != nil {
		return fmt.Errorf("check schema: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return fmt.Errorf("check schema: %w", err)
		}
		applied[name] = true
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("check schema: %w", err)
	}
	var pending []string
	for _, m := range all {
		if !applied[m.Name] {
			pending = append(pending, m.Name)
		}
	}
	if len(pending) > 0 {
		return fmt.Errorf("%w: %d of %d migrations pending, the first %s; %s", domain.ErrSourceNotMigrated, len(pending), len(all), pending[0], migrateHint)
	}
	return nil
}
