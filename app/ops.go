package app

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/trustchain/trustchain/adapters/mysql"
)

// Migration directions for Migrate.
type MigrateDirection int

const (
	MigrateUp MigrateDirection = iota
	MigrateDown
	MigrateStatus
)

// errNoDSN is the one problem these commands can have before connecting.
var errNoDSN = &ConfigError{Problems: []Problem{{Flag: "mysql-dsn", Message: "is required"}}}

// Migrate applies, rolls back or lists the embedded migrations.
func Migrate(ctx context.Context, dsn string, dir MigrateDirection, out io.Writer) error {
	if dsn == "" {
		return errNoDSN
	}
	db, err := mysql.Open(ctx, dsn, mysql.DefaultPoolConfig())
	if err != nil {
		return err
	}
	defer db.Close()
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
}

// Seed loads the sample catalogue; running it twice leaves one copy.
func Seed(ctx context.Context, dsn string, out io.Writer) error {
	if dsn == "" {
		return errNoDSN
	}
	db, err := mysql.Open(ctx, dsn, mysql.DefaultPoolConfig())
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.Seed(ctx); err != nil {
		return err
	}
	_, err = fmt.Fprintln(out, "sample catalogue loaded")
	return err
}
