package app

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/trustchain/trustchain/adapters/mysql"
)

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
func Migrate(ctx context.Context, dsn string, dir MigrateDirection, out io.Writer) error {
	return withDB(ctx, dsn, func(db *mysql.DB) error {
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
func Seed(ctx context.Context, dsn string, out io.Writer) error {
	return withDB(ctx, dsn, func(db *mysql.DB) error {
		if err := db.Seed(ctx); err != nil {
			return err
		}
		_, err := fmt.Fprintln(out, "sample catalogue loaded")
		return err
	})
}

// withDB runs f on a short-lived connection pool to dsn.
func withDB(ctx context.Context, dsn string, f func(*mysql.DB) error) error {
	if dsn == "" {
		return &ConfigError{Problems: []Problem{{Flag: "mysql-dsn", Message: "is required"}}}
	}
	db, err := mysql.Open(ctx, dsn, mysql.DefaultPoolConfig())
	if err != nil {
		return err
	}
	defer db.Close()
	return f(db)
}
