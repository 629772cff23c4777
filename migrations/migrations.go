// Package migrations holds the SQL that shapes trustchain's MySQL schema,
// embedded so the binary needs no files beside it. Files follow bun/migrate's
// naming, NAME.up.sql and NAME.down.sql with NAME = timestamp_description;
// the driver runs one statement per call, so a file with several statements
// separates them with a "--bun:split" line.
package migrations

import (
	"embed"
	"fmt"

	"github.com/uptrace/bun/migrate"
)

//go:embed *.sql
var files embed.FS

// Load returns the embedded migrations. Each call builds a fresh set, so no
// caller can change what another sees.
func Load() (*migrate.Migrations, error) {
	ms := migrate.NewMigrations()
	if err := ms.Discover(files); err != nil {
		return nil, fmt.Errorf("load migrations: %w", err)
	}
	return ms, nil
}
