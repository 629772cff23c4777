package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/trustchain/trustchain/adapters/mysql"
)

// MigrateConfig configures `trustchain migrate` and `trustchain seed`.
type MigrateConfig struct {
	MySQLDSN string        `flag:"mysql-dsn" env:"MYSQL_DSN" usage:"go-sql-driver DSN, e.g. user:pass@tcp(host:3306)/trustchain"`
	Timeout  time.Duration `flag:"timeout" env:"DB_TIMEOUT" usage:"give up after this long, whatever the database does"`
}

// DefaultOpsTimeout bounds migrate and seed: long enough for a migration on
// a large catalogue, short enough that a silent server fails a rollout.
const DefaultOpsTimeout = 30 * time.Second

// MigrateDefaults returns the defaults of migrate's and seed's flags.
func MigrateDefaults() MigrateConfig { return MigrateConfig{Timeout: DefaultOpsTimeout} }

// MigrateDirection chooses what Migrate does.
type MigrateDirection int

// Migration directions for Migrate.
const (
	MigrateUp MigrateDirection = iota
	MigrateDown
	MigrateStatus
)

// Migrate applies, rolls back or lists the embedded migrations, then prints
// their status.
func Migrate(ctx context.Context, mc MigrateConfig, dir MigrateDirection, out io.Writer) error {
	return withDB(ctx, mc, func(ctx context.Context, db *mysql.DB) error {
		switch dir {
		case MigrateUp:
			if err := db.MigrateUp(ctx); err != nil {
				return err
			}
		case MigrateDown:
			if err := db.MigrateDown(ctx); err != nil {
				return err
			}
		case MigrateStatus:
		default:
			return errors.New("unknown migration direction")
		}
		return db.MigrateStatus(ctx, out)
	})
}

// Seed loads the sample catalogue; running it twice leaves one copy.
func Seed(ctx context.Context, mc MigrateConfig, out io.Writer) error {
	return withDB(ctx, mc, func(ctx context.Context, db *mysql.DB) error {
		if err := db.Seed(ctx); err != nil {
			return err
		}
		_, err := fmt.Fprintln(out, "sample catalogue loaded")
		return err
	})
}

// withDB runs f on a short-lived pool to the DSN's database, all of it
// within the timeout: every statement, the connection and the migration
// lock included.
func withDB(ctx context.Context, mc MigrateConfig, f func(context.Context, *mysql.DB) error) error {
	var problems []Problem
	if mc.MySQLDSN == "" {
		problems = append(problems, Problem{Flag: "mysql-dsn", Message: "is required"})
	}
	if mc.Timeout <= 0 {
		problems = append(problems, Problem{Flag: "timeout", Message: "must be positive"})
	}
	if len(problems) > 0 {
		return &ConfigError{Problems: problems}
	}
	db, err := mysql.Open(mc.MySQLDSN, mysql.DefaultPoolConfig())
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(ctx, mc.Timeout)
	defer cancel()
	if _, err := db.Connect(ctx); err != nil {
		return timeoutError(ctx, mc.Timeout, err)
	}
	return timeoutError(ctx, mc.Timeout, f(ctx, db))
}

// timeoutError says plainly when the timeout, not the database, ended it.
func timeoutError(ctx context.Context, timeout time.Duration, err error) error {
	if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("gave up after %s (--timeout): %w", timeout, err)
	}
	return err
}
